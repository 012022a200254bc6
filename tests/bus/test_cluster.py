"""The kill / restart scenarios with real processes, short form: nats-server, collector
processes (`networkpype collect`) and a consumer process (`networkpype consume`) on
loopback, the exchange simulator as the venue. The full form, 1,000 topics and 3 collectors,
is `python3 dev.py cluster` (docs/deployment.md has its figures)."""

from __future__ import annotations

import pytest

from networkpype.cli.cluster import ClusterPlan, run_plan
from networkpype.cli.demo_plan import demo_topics

# long_form: processes and a NATS server for a minute; dev.py runs them on one Python only.
pytestmark = [pytest.mark.timeout(180), pytest.mark.long_form]


def test_kill_a_collector_restart_the_consumer_and_nats() -> None:
    plan = ClusterPlan(
        topics=tuple(demo_topics(60)),
        collectors=3,
        partitions=6,
        rate=10.0,
        lease_ttl=2.0,
        phase=2.0,
        nats_down=1.0,
    )
    result = run_plan(plan, say=lambda _: None)
    report = result.report
    summary = "\n".join(result.summary())
    assert result.ok, summary
    # The checks above, spelt out: the killed collector's topics, and only those, lost what
    # they carried between the kill and the take-over, each announced exactly; nothing else.
    assert result.killed_topics and report.gap_topics == result.killed_topics, summary
    assert report.missed > 0 and report.unreported_gaps == 0 and report.duplicates == 0
    assert report.worst_recovery is not None and report.worst_recovery < 2.0 + 5.0
    assert result.nats_outage is not None
    assert report.records.get("PartitionAcquired", 0) >= 6 + 1  # the take-over shows


def test_a_hot_standby_loses_nothing_when_a_collector_dies() -> None:
    plan = ClusterPlan(
        topics=tuple(demo_topics(40)),
        collectors=2,
        partitions=4,
        replicas=2,
        lease_ttl=2.0,
        phase=2.0,
        scenarios=("kill-collector",),
    )
    result = run_plan(plan, say=lambda _: None)
    summary = "\n".join(result.summary())
    assert result.ok, summary
    assert result.report.missed == 0 and result.report.gaps == 0, summary
    assert result.report.duplicates == 0, summary
