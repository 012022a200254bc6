"""``networkpype demo --cluster``: the market-data bus on one machine, broken on purpose,
checked message by message.

The pieces, all real and on loopback: a ``nats-server`` with JetStream and a file store in
a temporary directory (:class:`~networkpype.bus.LocalNatsServer`); the exchange simulator
as the venue (a process of its own); ``--collectors`` collector processes
(``networkpype collect``), each taking partition leases; one consumer process
(``networkpype consume --durable ... --format audit --events``) writing what it reads to a
file that :mod:`networkpype.cli.cluster_audit` checks.

The faults, one at a time, each after the stream is whole again (``--phase`` seconds of
streaming between two): SIGKILL one collector (its partitions expire and are taken over;
with ``--replicas 2`` its standby goes on alone); SIGTERM the consumer and start it again
(resumes from its last acknowledgement); SIGKILL the consumer and start it again (what it
had not acknowledged comes again, marked as redelivered); SIGKILL ``nats-server`` and start
it again on the same store (collectors buffer, consumers wait, all reconnect by themselves).

The verdict: no duplicate, no unreported gap, every topic alive after the last fault,
reported gaps only on the killed collector's topics (none with a hot standby), and the
fail-over time. Exit status 0 when it holds, 1 when not, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from networkpype.bus.partitions import partition_of
from networkpype.cli.cluster_audit import ClusterAudit, ClusterReport

__all__ = [
    "EXTRA_SCENARIOS",
    "SCENARIOS",
    "Cluster",
    "ClusterPlan",
    "ClusterResult",
    "run",
    "run_plan",
]

SCENARIOS = ("kill-collector", "restart-consumer", "crash-consumer", "restart-nats")
"""The default run, in order."""
EXTRA_SCENARIOS = ("crash-nats",)
"""Also available: SIGKILL nats-server (what a crash costs is reported, not promised)."""
_DURABLE = "cluster-demo"
_MAY_MISS = ("kill-collector", "crash-nats")  # faults whose gaps are reported, not failures
_RECOVERY_TIMEOUT = 60.0  # seconds for every topic to flow again after a fault


@dataclass(frozen=True)
class ClusterPlan:
    """One run. ``topics``: the venue's topics; ``rate``: events a second per topic;
    ``phase``: seconds of streaming between two faults; ``lease_ttl`` (s) and
    ``partitions``/``replicas`` as ``networkpype collect``'s."""

    topics: tuple[str, ...]
    collectors: int = 3
    partitions: int = 12
    replicas: int = 1
    rate: float = 10.0
    lease_ttl: float = 3.0
    phase: float = 5.0
    nats_down: float = 2.0
    scenarios: tuple[str, ...] = SCENARIOS
    topics_per_connection: int = 200


@dataclass
class ClusterResult:
    """The audit and what the run measured."""

    plan: ClusterPlan
    report: ClusterReport
    killed_topics: frozenset[str] = frozenset()
    kills: list[float] = field(default_factory=list)
    faults: list[tuple[str, float]] = field(default_factory=list)  # (scenario, Unix time)
    gap_windows: list[tuple[str, float, float]] = field(default_factory=list)
    nats_outage: float | None = None  # seconds from the server's kill to every topic back
    collector_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    venue_violations: int = 0
    started: float = 0.0  # Unix time of the start, for the times shown
    unreported: list[tuple[str, float, float]] = field(default_factory=list)

    def checks(self) -> list[tuple[str, bool]]:
        """Each promise and whether it held."""
        r, plan = self.report, self.plan
        dropped = sum(
            s.get("publisher", {}).get("dropped", 0) for s in self.collector_status.values()
        )
        checks = [
            ("no duplicate", r.duplicates == 0),
            ("no unreported gap (nothing the bus acknowledged was lost)", r.unreported_gaps == 0),
            ("every topic alive after the last fault", not r.silent_topics),
            ("no message dropped by a collector's buffer", dropped == 0),
            ("no venue limit broken", self.venue_violations == 0),
        ]
        by_fault = self.gaps_by_fault()
        unexplained = {f: n for f, (n, _) in by_fault.items() if f not in _MAY_MISS}
        checks.append(
            (
                "gaps only where a fault may cost data (a killed collector, a crashed "
                f"nats-server): {unexplained or 'none elsewhere'}",
                not unexplained,
            )
        )
        if "restart-nats" in plan.scenarios:
            moved = sum(
                s.get("leases", {}).get("lost", 0) for s in self.collector_status.values()
            )
            checks.append(("no partition changed hands over the nats-server restart", moved == 0))
        if "kill-collector" in plan.scenarios:
            if plan.replicas >= 2:
                lost = by_fault.get("kill-collector", (0, set()))[0]
                checks.append(("hot standby: no gap over the collector's kill", lost == 0))
            else:
                killed = by_fault.get("kill-collector", (0, set()))[1]
                checks.append(
                    (
                        "kill: gaps only on the killed collector's topics",
                        killed <= self.killed_topics,
                    )
                )
                bound = plan.lease_ttl + plan.lease_ttl / 3 * 2 + 5.0
                worst = r.worst_recovery
                checks.append(
                    (
                        f"fail-over within lease TTL + renew ticks + reconnect ({bound:g} s)",
                        worst is None or worst <= bound,
                    )
                )
        return checks

    def _fault_of(self, when: float) -> str:
        return next((f for f, t in reversed(self.faults) if t <= when), "none")

    def gaps_by_fault(self) -> dict[str, tuple[int, set[str]]]:
        """Reported gaps by the last fault before the consumer saw them (``"none"``: before
        any fault). (The consumer may see a gap well after its fault: a backlog after a
        nats-server restart, say.)"""
        out: dict[str, tuple[int, set[str]]] = {}
        for topic, _before, after in self.gap_windows:
            name = self._fault_of(after)
            count, topics = out.get(name, (0, set()))
            topics.add(topic)
            out[name] = (count + 1, topics)
        return out

    @property
    def ok(self) -> bool:
        return all(ok for _, ok in self.checks())

    def summary(self) -> list[str]:
        """The closing lines; the last says OK or FAILED."""
        r, plan = self.report, self.plan
        worst, median = r.worst_recovery, r.median_recovery
        lines = [
            "",
            f"cluster summary ({len(plan.topics)} topics at {plan.rate:g}/s, {plan.collectors} "
            f"collectors, {plan.partitions} partitions x {plan.replicas} replica(s), lease TTL "
            f"{plan.lease_ttl:g} s):",
            f"  messages read: {r.messages} over {r.topics} topics",
            f"  duplicates: {r.duplicates}; redelivered after the consumer crash: "
            f"{r.redelivered} (marked)",
            f"  reported gaps: {r.gaps} on {len(r.gap_topics)} topics, {r.missed} messages "
            f"missed (killed collector's topics: {len(self.killed_topics)})",
            f"  unreported gaps: {r.unreported_gaps} ({r.unreported_missed} messages)",
            "  fail-over (kill to the topic's next message): "
            + (f"worst {worst:.2f} s, median {median:.2f} s" if worst is not None else "-"),
            "  nats-server restart (kill to every topic back): "
            + (f"{self.nats_outage:.2f} s" if self.nats_outage is not None else "-"),
            "  records: " + ", ".join(f"{k} {v}" for k, v in sorted(r.records.items())),
            f"  silent topics after the last fault: {len(r.silent_topics)}",
        ]
        for name, status in sorted(self.collector_status.items()):
            pub = status.get("publisher", {})
            lines.append(
                f"  collector {name}: {status.get('messages', 0)} messages, published "
                f"{pub.get('published', 0)}, duplicates collapsed {pub.get('duplicates', 0)}, "
                f"re-sent {pub.get('resent', 0)}, dropped {pub.get('dropped', 0)}"
            )
        for fault, (count, topics) in sorted(self.gaps_by_fault().items()):
            lines.append(f"  reported gaps over {fault}: {count} on {len(topics)} topics")
        for topic, before, after in [
            w for w in self.gap_windows if self._fault_of(w[2]) not in _MAY_MISS
        ][:5]:
            lines.append(
                f"  gap outside a data-costing fault: {topic} between "
                f"{before - self.started:.2f} s and {after - self.started:.2f} s"
            )
        for topic, before, after in self.unreported[:5]:
            lines.append(
                f"  unreported gap: {topic} between {before - self.started:.2f} s and "
                f"{after - self.started:.2f} s"
            )
        for name, ok in self.checks():
            lines.append(f"  [{'ok' if ok else 'FAILED'}] {name}")
        lines.append(f"result: {'OK' if self.ok else 'FAILED'}")
        return lines


class _Collector:
    """One ``networkpype collect`` process and its latest status line."""

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
        self.collectors: dict[str, _Collector] = {}
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
        self.collectors[name] = _Collector(name, argv)

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

    def wait_flowing(self, since: float, timeout: float = _RECOVERY_TIMEOUT) -> float | None:
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

    def drain(self, quiet: float = 2.0, timeout: float = _RECOVERY_TIMEOUT) -> float:
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


def run_plan(plan: ClusterPlan, say: Callable[[str], None] = print) -> ClusterResult:
    """Run ``plan`` from start to verdict (see the module docstring)."""
    with (
        tempfile.TemporaryDirectory(prefix="networkpype-cluster-") as tmp,
        Cluster(plan, Path(tmp), say) as cluster,
    ):
        return _scenario(cluster, plan, say)


def _scenario(cluster: Cluster, plan: ClusterPlan, say: Callable[[str], None]) -> ClusterResult:
    started = time.time()
    for i in range(1, plan.collectors + 1):
        cluster.start_collector(f"c{i}")
    cluster.start_consumer()
    say(f"{plan.collectors} collectors and a consumer started; waiting for every topic")
    took = cluster.wait_flowing(started)
    if took is None:
        raise RuntimeError("the topics did not all flow within a minute of the start")
    say(f"all {len(plan.topics)} topics flowing after {took:.1f} s")
    result = ClusterResult(plan, cluster.audit.report())
    last_fault = time.time()
    for scenario in plan.scenarios:
        cluster.stream(plan.phase)
        now = time.time()
        if scenario == "kill-collector":
            victim = cluster.collectors["c1"]
            held = set(victim.held)
            result.killed_topics = frozenset(
                t for t in plan.topics if partition_of(t, plan.partitions) in held
            )
            say(f"fault: SIGKILL collector c1 (partitions {sorted(held)}, "
                f"{len(result.killed_topics)} topics)")
            now = time.time()
            cluster.killed.add("c1")
            victim.signal(signal.SIGKILL)
            victim.wait(5.0)
            result.kills.append(now)
        elif scenario in ("restart-consumer", "crash-consumer"):
            sig = signal.SIGTERM if scenario == "restart-consumer" else signal.SIGKILL
            say(f"fault: {'SIGTERM' if sig == signal.SIGTERM else 'SIGKILL'} the consumer, "
                "start it again after 1 s")
            t0 = time.monotonic()
            cluster.stop_consumer(sig)
            say(f"  consumer ended in {time.monotonic() - t0:.2f} s")
            time.sleep(1.0)
            cluster.start_consumer()
        elif scenario in ("restart-nats", "crash-nats"):
            how = "SIGTERM" if scenario == "restart-nats" else "SIGKILL"
            say(f"fault: {how} nats-server, start it again after {plan.nats_down:g} s "
                "(same store)")
            if scenario == "restart-nats":
                cluster.nats.stop()
            else:
                cluster.nats.kill()
            time.sleep(plan.nats_down)
            cluster.nats.start()
        else:
            raise ValueError(f"unknown scenario {scenario!r}")
        result.faults.append((scenario, now))
        back = cluster.wait_flowing(now)
        if back is None:
            say(f"  not every topic came back within {_RECOVERY_TIMEOUT:g} s")
        else:
            say(f"  every topic flowing again {back:.2f} s after the fault")
            if scenario in ("restart-nats", "crash-nats"):
                result.nats_outage = back
        last_fault = time.time()
    cluster.stream(plan.phase)
    say("stopping: the collectors (SIGTERM), then the consumer once it has read everything")
    cluster.killed.update(cluster.collectors)
    for collector in cluster.collectors.values():
        collector.signal(signal.SIGTERM)
    for name, collector in cluster.collectors.items():
        collector.wait(15.0)
        result.collector_status[name] = collector.status
    behind = cluster.drain()
    if behind:
        say(f"  the consumer was {behind:.1f} s behind the collectors")
    cluster.stop_consumer(signal.SIGTERM)
    cluster.progress()
    venue = cluster.stop_venue()
    result.venue_violations = int(venue.get("violations", -1))
    if result.venue_violations:
        say(f"venue: {result.venue_violations} incoming-rate violations (closed with 1008)")
    result.started = started
    result.unreported = cluster.audit.unreported_windows
    result.gap_windows = cluster.audit.gap_windows
    result.report = cluster.audit.report(
        kills=result.kills, expected_topics=plan.topics, since=last_fault
    )
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` options of ``--cluster``."""
    group = parser.add_argument_group("--cluster (the market-data bus on NATS JetStream)")
    group.add_argument(
        "--cluster",
        action="store_true",
        help="collectors, nats-server and a consumer as processes, with kills and restarts",
    )
    group.add_argument("--collectors", type=int, default=3, help="default 3")
    group.add_argument("--replicas", type=int, default=1, help="2: hot standby (default 1)")
    group.add_argument("--partitions", type=int, default=12, help="default 12")
    group.add_argument("--lease-ttl", type=float, default=3.0, help="seconds (default 3)")
    group.add_argument(
        "--phase", type=float, default=5.0, help="seconds between two faults (default 5)"
    )
    group.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, in order (default {','.join(SCENARIOS)}; also "
        f"{','.join(EXTRA_SCENARIOS)})",
    )


def run(args: argparse.Namespace) -> int:
    """``networkpype demo --cluster``; returns the exit status."""
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    bad = [s for s in scenarios if s not in SCENARIOS + EXTRA_SCENARIOS]
    if bad or args.collectors < 1 or args.replicas < 1 or args.partitions < 1:
        print(
            f"networkpype demo: error: --scenarios from {', '.join(SCENARIOS + EXTRA_SCENARIOS)}; "
            "--collectors, --replicas, --partitions at least 1",
            file=sys.stderr,
        )
        return 2
    if args.replicas > args.collectors:
        print("networkpype demo: error: --replicas above --collectors", file=sys.stderr)
        return 2
    plan = ClusterPlan(
        topics=tuple(args.topics),
        collectors=args.collectors,
        partitions=args.partitions,
        replicas=args.replicas,
        rate=args.rate,
        lease_ttl=args.lease_ttl,
        phase=args.phase,
        scenarios=scenarios,
    )
    started = time.monotonic()

    def say(text: str) -> None:
        if not args.quiet:
            print(f"{time.monotonic() - started:7.2f}  {text}", flush=True)

    try:
        result = run_plan(plan, say)
    except KeyboardInterrupt:
        return 130
    for line in result.summary():
        print(line, flush=True)
    return 0 if result.ok else 1
