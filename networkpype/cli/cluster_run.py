"""The processes of one ``networkpype demo --cluster`` run and what the consumer wrote:
:class:`Cluster` starts ``nats-server``, the venue (a process of its own:
:mod:`networkpype.cli._cluster_venue`), the collector processes and the consumer process,
injects the faults it is told to, and feeds :class:`~networkpype.cli.cluster_audit.
ClusterAudit` with the consumer's output as it grows. The plan of a run is
:class:`ClusterPlan`; the scenario and the verdict are :mod:`networkpype.cli.cluster`'s.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from networkpype.cli.cluster_audit import ClusterAudit

__all__ = ["EXTRA_SCENARIOS", "RECOVERY_TIMEOUT", "SCENARIOS", "Cluster", "ClusterPlan"]

SCENARIOS = ("kill-collector", "restart-consumer", "crash-consumer", "restart-nats")
"""The default run, in order."""
EXTRA_SCENARIOS = ("crash-nats",)
"""Also available: SIGKILL nats-server (what a crash costs is reported, not promised)."""
_DURABLE = "cluster-demo"
RECOVERY_TIMEOUT = 60.0  # seconds for every topic to flow again after a fault


@dataclass(frozen=True)
class ClusterPlan:
    """One run. ``topics``: the venue's topics; ``rate``: events a second per topic;
    ``phase``: seconds of streaming between two faults; ``lease_ttl`` (s) and
    ``partitions``/``replicas`` as ``networkpype collect``'s (and by default the same:
    ``LeaseSettings``' 16 partitions; the defaults are what is measured)."""

    topics: tuple[str, ...]
    collectors: int = 3
    partitions: int = 16
    replicas: int = 1
    rate: float = 10.0
    lease_ttl: float = 3.0
    phase: float = 5.0
    nats_down: float = 2.0
    scenarios: tuple[str, ...] = SCENARIOS
    topics_per_connection: int = 200


class CollectorProcess:
    """One ``networkpype collect`` process and its latest status line (read by a thread
    of its own)."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None)
        self.status: dict[str, Any] = {}
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"status-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                data = msgspec.json.decode(line)
            except msgspec.DecodeError:
                continue
            if "ready" in data:
                self.ready.set()
            else:
                self.status = data

    @property
    def held(self) -> list[int]:
        return [p for p, _ in self.status.get("leases", {}).get("held", [])]

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(2.0)


class Cluster:
    """NATS, the venue, the collectors and the consumer of one run (a context manager)."""

    def __init__(self, plan: ClusterPlan, workdir: Path, say: Callable[[str], None]) -> None:
        from networkpype.bus.server import LocalNatsServer

        self.plan = plan
        self.workdir = workdir
        self.say = say
        self.nats = LocalNatsServer(store_dir=workdir / "nats")
        self.output = workdir / "consumer.jsonl"
        self.topics_file = workdir / "topics.txt"
        self.topics_file.write_text("\n".join(plan.topics) + "\n")
        self.collectors: dict[str, CollectorProcess] = {}
        self.killed: set[str] = set()
        self.consumer: subprocess.Popen[bytes] | None = None
        self.audit = ClusterAudit()
        self._offset = 0
        self._partial = b""
        self.venue: subprocess.Popen[bytes] | None = None
        self.venue_url = ""

    def __enter__(self) -> Cluster:
        self.nats.start()
        self.say(f"nats-server with JetStream on {self.nats.url}, store {self.nats.store_dir}")
        self.venue = subprocess.Popen(
            [sys.executable, "-m", "networkpype.cli._cluster_venue", str(self.plan.rate)],
            stdout=subprocess.PIPE,
        )
        assert self.venue.stdout is not None
        line = self.venue.stdout.readline().decode()
        if "listening on " not in line:
            raise RuntimeError(f"the venue did not start: {line!r}")
        self.venue_url = line.rsplit(" ", 1)[-1].strip()
        self.say(f"venue (exchange simulator, a process of its own) on {self.venue_url}")
        return self

    def stop_venue(self) -> dict[str, Any]:
        """Stop the venue; its statistics."""
        venue, self.venue = self.venue, None
        if venue is None:
            return {}
        venue.send_signal(signal.SIGTERM)
        out, _ = venue.communicate(timeout=30)
        lines = [line for line in out.splitlines() if line.startswith(b"{")]
        return dict(msgspec.json.decode(lines[-1])) if lines else {}

    def __exit__(self, *exc: object) -> None:
        if self.consumer is not None and self.consumer.poll() is None:
            self.consumer.kill()
            self.consumer.wait()
        for collector in self.collectors.values():
            collector.signal(signal.SIGKILL)
            collector.wait(5.0)
        if self.venue is not None:
            self.venue.kill()
            self.venue.wait()
        self.nats.close()

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "networkpype", *args]

    def start_collector(self, name: str) -> None:
        plan = self.plan
        argv = self._cli(
            "collect",
            self.venue_url,
            "--topics",
            f"@{self.topics_file}",
            "--id",
            name,
            "--nats",
            self.nats.url,
            "--partitions",
            str(plan.partitions),
            "--replicas",
            str(plan.replicas),
            "--lease-ttl",
            str(plan.lease_ttl),
            "--topics-per-connection",
            str(plan.topics_per_connection),
            "--status-interval",
            "0.5",
            "--connect-deadline",
            "20",
            "--stamp",  # the audit dates messages by the collectors' receipt
        )
        self.collectors[name] = CollectorProcess(name, argv)

    def start_consumer(self) -> None:
        self.consumer = subprocess.Popen(
            self._cli(
                "consume",
                "--durable",
                _DURABLE,
                "--events",
                "--format",
                "audit",
                "--output",
                str(self.output),
                "--nats",
                self.nats.url,
                "--connect-deadline",
                "20",
            )
        )

    def stop_consumer(self, sig: int) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            consumer.send_signal(sig)
            try:
                consumer.wait(10.0)
            except subprocess.TimeoutExpired:
                consumer.kill()
                consumer.wait()

    def progress(self) -> None:
        """Feed the audit with what the consumer wrote since the last call."""
        if not self.output.exists():
            return
        with open(self.output, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        decode = msgspec.json.decode
        for line in lines:
            if line:
                self.audit.add(decode(line))

    def wait_flowing(self, since: float, timeout: float = RECOVERY_TIMEOUT) -> float | None:
        """Seconds from ``since`` (Unix time) until the consumer had, for every topic, a
        message the venue sent after ``since``; None if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            self.progress()
            last = self.audit.last_time
            if all(last.get(t, 0.0) > since for t in self.plan.topics):
                return max(self.audit.last_receipt[t] for t in self.plan.topics) - since
            time.sleep(0.1)
        return None

    def drain(self, quiet: float = 2.0, timeout: float = RECOVERY_TIMEOUT) -> float:
        """Read until the consumer wrote nothing for ``quiet`` seconds; seconds it took."""
        started = last_change = time.monotonic()
        seen = -1
        while time.monotonic() - last_change < quiet and time.monotonic() - started < timeout:
            self.progress()
            if self.audit.messages != seen:
                seen, last_change = self.audit.messages, time.monotonic()
            time.sleep(0.1)
        return last_change - started

    def check_alive(self) -> None:
        """Raise if a collector ended that was not killed on purpose."""
        for name, collector in self.collectors.items():
            code = collector.proc.poll()
            if code is not None and name not in self.killed:
                raise RuntimeError(f"collector {name} exited with status {code}")

    def stream(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check_alive()
            self.progress()
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))
