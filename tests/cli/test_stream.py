"""``networkpype stream`` against a loopback exchange simulator started by the test."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from networkpype.demo import DemoServerThread, ExchangeSimulatorThread
from tests.cli.helpers import networkpype


@pytest.fixture(name="venue")
def venue_fixture() -> Iterator[ExchangeSimulatorThread]:
    with ExchangeSimulatorThread(rate=50.0, lifetime=60.0) as venue:
        yield venue


def test_topics_print_json_lines_and_sigint_stops_within_a_second(
    venue: ExchangeSimulatorThread,
) -> None:
    topics = ["--topic", "btcusdt@trade", "--topic", "ethusdt@depth", "--codec", "binance"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "networkpype", "stream", venue.url, *topics],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        messages = [json.loads(proc.stdout.readline()) for _ in range(10)]
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=5)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert {m["stream"] for m in messages} == {"btcusdt@trade", "ethusdt@depth"}
    assert all("result" not in m for m in messages)  # acknowledgements are not data
    assert status == 130
    assert took < 1.5, f"took {took:.2f} s to stop"
    assert proc.stderr is not None
    events = [json.loads(line) for line in proc.stderr.read().splitlines()]
    assert events[0]["event"] == "Connected"
    assert events[0]["connection_id"] == "shard1"


def test_raw_subscription_count_and_replies(venue: ExchangeSimulatorThread) -> None:
    request = {"method": "SUBSCRIBE", "params": ["solusdt@trade"], "id": 7}
    proc = networkpype("stream", venue.url, "--subscribe", json.dumps(request), "--count", "4")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0] == {"result": None, "id": 7}
    assert [m["seq"] for m in lines[1:]] == [1, 2, 3]
    assert json.loads(proc.stderr.splitlines()[0])["event"] == "Connected"


def test_duration_ends_with_status_0(venue: ExchangeSimulatorThread) -> None:
    started = time.monotonic()
    proc = networkpype(
        "stream", venue.url, "--topic", "adausdt@trade", "--duration", "1",
        "--header", "X-Demo: 1", "--ping-interval", "0.5", "--pong-timeout", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert 1.0 <= time.monotonic() - started < 8
    assert len(proc.stdout.splitlines()) >= 20  # 50 a second


def test_unreachable_endpoint_exits_1_with_one_line() -> None:
    proc = networkpype("stream", "ws://127.0.0.1:9/ws", "--count", "1")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("networkpype stream: ConnectionFailedError: ")


@pytest.mark.parametrize("option", [["--compress"], ["--compress", "10"]])
def test_compress_offers_permessage_deflate(option: list[str]) -> None:
    request = {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}
    with DemoServerThread(rate=50.0) as server:
        proc = networkpype(
            "stream", server.url, "--subscribe", json.dumps(request), "--count", "3", *option
        )
        headers = server.statistics().last_handshake_headers
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line).get("seq") for line in proc.stdout.splitlines()] == [None, 1, 2]
    offer = headers.get("Sec-WebSocket-Extensions", "")
    assert offer.startswith("permessage-deflate"), headers
    assert ("server_max_window_bits=10" in offer) == (option[-1] == "10")


def test_compress_refuses_window_bits_zlib_cannot_inflate() -> None:
    proc = networkpype("stream", "ws://127.0.0.1:9/ws", "--compress", "8")
    assert proc.returncode == 2
    assert "window bits are 9-15" in proc.stderr
