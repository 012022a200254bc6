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
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from networkpype.bus.partitions import partition_of
from networkpype.cli.cluster_audit import ClusterReport
from networkpype.cli.cluster_run import (
    EXTRA_SCENARIOS,
    RECOVERY_TIMEOUT,
    SCENARIOS,
    Cluster,
    ClusterPlan,
)

__all__ = [
    "EXTRA_SCENARIOS",
    "SCENARIOS",
    "Cluster",
    "ClusterPlan",
    "ClusterResult",
    "run",
    "run_plan",
]

_MAY_MISS = ("kill-collector", "crash-nats")  # faults whose gaps are reported, not failures


@dataclass
class ClusterResult:
    """The audit and what the run measured."""

    plan: ClusterPlan
    report: ClusterReport
    killed_topics: frozenset[str] = frozenset()
    killed_partitions: frozenset[int] = frozenset()
    takeovers: list[tuple[int, float]] = field(default_factory=list)  # (partition, Unix time)
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

    def _failover_lines(self) -> list[str]:
        leases, subscribing = self.failover_parts()
        if not leases or not subscribing:
            return []
        ttl = self.plan.lease_ttl
        return [
            f"    kill to lease taken over (TTL {ttl:g} s, renewed every {ttl / 3:g} s): "
            f"worst {max(leases):.2f} s, median {statistics.median(leases):.2f} s",
            "    lease taken over to the topic's next message (subscribing): worst "
            f"{max(subscribing):.2f} s, median {statistics.median(subscribing):.2f} s",
        ]

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

    def failover_parts(self) -> tuple[list[float], list[float]]:
        """The fail-over in two parts: seconds from the kill until a survivor took each of
        the killed collector's partitions (its lease expired: TTL, then a renewal tick), and
        from that take-over until each of their topics' next message (subscribing, paced)."""
        if not self.kills or self.plan.replicas >= 2:
            return [], []
        kill = self.kills[0]
        taken: dict[int, float] = {}
        for partition, at in self.takeovers:
            if at >= kill and partition in self.killed_partitions:
                taken.setdefault(partition, at)
        leases = [at - kill for at in taken.values()]
        subscribing = [
            resumed - taken[partition]
            for topic, before, resumed in self.gap_windows
            if before <= kill <= resumed
            and (partition := partition_of(topic, self.plan.partitions)) in taken
        ]
        return leases, subscribing

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
            *self._failover_lines(),
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
            result.killed_partitions = frozenset(held)
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
            say(f"  not every topic came back within {RECOVERY_TIMEOUT:g} s")
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
        for detail in venue.get("violation_details", []):
            say(f"  {detail}")
    result.started = started
    result.unreported = cluster.audit.unreported_windows
    result.gap_windows = cluster.audit.gap_windows
    result.takeovers = cluster.audit.takeovers
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
    group.add_argument(
        "--partitions",
        type=int,
        default=ClusterPlan.partitions,
        help=f"default {ClusterPlan.partitions}, as networkpype collect's",
    )
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
