"""``networkpype collect`` and ``networkpype consume``: their errors, and a collector and a
consumer process end to end over a real nats-server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from networkpype.bus.server import LocalNatsServer
from networkpype.demo import ExchangeSimulatorThread
from tests.cli.helpers import networkpype


@pytest.fixture(name="nats_server")
def nats_server_fixture() -> Iterator[LocalNatsServer]:
    with LocalNatsServer() as server:
        yield server


def test_unreachable_nats_exits_1_naming_it() -> None:
    server = LocalNatsServer()  # not started: nothing listens
    try:
        started = time.monotonic()
        proc = networkpype(
            "collect", "ws://127.0.0.1:9/ws", "--topics", "3", "--nats", server.url,
            "--connect-deadline", "1",
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert f"NATS unreachable at {server.url}" in proc.stderr
        assert time.monotonic() - started < 15
        proc = networkpype("consume", "--nats", server.url, "--connect-deadline", "1")
        assert proc.returncode == 1 and "NATS unreachable" in proc.stderr
    finally:
        server.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--venue", "a.b"], "must be a non-empty name"),
        (["--nats", "http://x:1"], "is not a NATS URL"),
        (["--topics", "0"], "within 1..100000"),
        (["--topics", "@/nonexistent/file"], "cannot read"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    base = ["collect", "ws://127.0.0.1:9/ws", "--topics", "3"]
    proc = networkpype(*base, *args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_a_collector_and_a_consumer_process(nats_server: LocalNatsServer) -> None:
    with ExchangeSimulatorThread(rate=50.0, lifetime=60.0) as venue:
        collector = subprocess.Popen(
            [sys.executable, "-m", "networkpype", "collect", venue.url, "--topics", "5",
             "--nats", nats_server.url, "--id", "c1", "--lease-ttl", "1",
             "--status-interval", "0.2"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert collector.stdout is not None
            assert json.loads(collector.stdout.readline()) == {"ready": "c1"}
            consumer = networkpype(
                "consume", "--nats", nats_server.url, "--count", "50", "--events",
                "--durable", "d1", timeout=30,
            )  # fmt: skip
            assert consumer.returncode == 0, consumer.stderr
            lines = [json.loads(line) for line in consumer.stdout.splitlines()]
            data = [line for line in lines if "data" in line]
            assert len(data) == 50
            assert all(line["data"]["stream"] == line["topic"] for line in data)
            assert lines[0]["event"] == "PartitionAcquired"  # before the first message
            collector.send_signal(signal.SIGTERM)
            assert collector.wait(15) == 0
            status = [json.loads(line) for line in collector.stdout.read().splitlines()]
            assert status[-1]["publisher"]["dropped"] == 0
            assert status[-1]["messages"] >= 50
        finally:
            collector.kill()
            collector.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "kill-collector,bogus"], "--scenarios from kill-collector"),
        (["--replicas", "3", "--collectors", "2"], "--replicas above --collectors"),
    ],
)
def test_demo_cluster_bad_arguments_exit_2(args: list[str], message: str) -> None:
    proc = networkpype("demo", "--cluster", *args)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_demo_cluster_measures_the_collectors_defaults() -> None:
    # The figures of `dev.py cluster` are the product's: the demo runs its collectors with
    # networkpype collect's defaults (issue 14; it ran 12 partitions against collect's 16).
    import argparse

    from networkpype.bus import LeaseSettings
    from networkpype.cli import cluster

    parser = argparse.ArgumentParser()
    cluster.add_arguments(parser)
    args = parser.parse_args([])
    plan = cluster.ClusterPlan(topics=("a",))
    defaults = LeaseSettings()
    assert args.partitions == plan.partitions == defaults.partitions
    assert args.lease_ttl == plan.lease_ttl == defaults.ttl
    assert args.replicas == plan.replicas == defaults.replicas


def test_the_stream_replicas_of_a_nats_cluster_can_be_asked_for() -> None:
    # docs/deployment.md runs the bus on a 3-node NATS cluster with R3 streams: a collector
    # or consumer that creates the stream (and the lease bucket) must be able to ask for
    # them, else the first to start makes them R1 (issue 14, the deployment guide).
    from networkpype.cli import _parser
    from networkpype.cli.collect import _settings

    args = _parser().parse_args(
        ["collect", "ws://127.0.0.1:9/ws", "--topics", "3", "--stream-replicas", "3"]
    )
    assert _settings(args).stream.replicas == 3
    consume = _parser().parse_args(["consume", "--stream-replicas", "3"])
    assert consume.stream_replicas == 3
    default = _parser().parse_args(["collect", "ws://127.0.0.1:9/ws", "--topics", "3"])
    assert _settings(default).stream.replicas == 1
