"""The cluster demo's audit: pure."""

from __future__ import annotations

from networkpype.cli.cluster_audit import audit


def _m(topic: str, seq: int, t: float, r: bool = False) -> dict[str, object]:
    line: dict[str, object] = {"topic": topic, "seq": seq, "t": t}
    if r:
        line["r"] = 1
    return line


def _gap(topic: str, after: int, missed: int) -> dict[str, object]:
    return {"event": "SequenceGap", "topic": topic, "after": after, "missed": missed, "at": 0}


def test_clean_stream() -> None:
    report = audit([_m("a", 5, 1.0), _m("a", 6, 1.1), _m("b", 1, 1.2)])
    assert (report.messages, report.topics, report.duplicates, report.gaps) == (3, 2, 0, 0)
    assert report.unreported_gaps == 0


def test_reported_and_unreported_gaps_and_recovery() -> None:
    lines = [
        _m("a", 1, 1.0), _gap("a", 1, 3), _m("a", 5, 4.0),   # reported: 2..4
        _m("b", 1, 1.0), _m("b", 3, 2.0),                   # unreported: 2
        _m("c", 1, 1.0), _gap("c", 1, 2), _m("c", 3, 2.0),  # wrong size: unreported
    ]  # fmt: skip
    report = audit(lines, kills=[2.5])
    assert (report.gaps, report.missed, report.gap_topics) == (1, 3, frozenset({"a"}))
    assert (report.unreported_gaps, report.unreported_missed) == (2, 2)
    assert report.recoveries == (1.5,)
    assert report.records == {"SequenceGap": 2}


def test_duplicates_and_marked_redeliveries() -> None:
    report = audit([_m("a", 1, 1.0), _m("a", 1, 1.1), _m("a", 1, 1.2, r=True), _m("a", 2, 1.3)])
    assert (report.duplicates, report.redelivered, report.unreported_gaps) == (1, 1, 0)


def test_silent_topics() -> None:
    report = audit([_m("a", 1, 5.0), _m("b", 1, 1.0)], expected_topics=["a", "b", "c"], since=2.0)
    assert report.silent_topics == ("b", "c")


def test_the_collectors_stamp_dates_a_line_when_present() -> None:
    # The consumer read both late (t = 9.0), the collector had them at 1.0 and 4.0.
    lines = [
        {"topic": "a", "seq": 1, "t": 9.0, "rx": 1_000_000_000},
        _gap("a", 1, 2),
        {"topic": "a", "seq": 4, "t": 9.0, "rx": 4_000_000_000},
    ]
    report = audit(lines, kills=[2.0])
    assert report.recoveries == (2.0,)


def test_the_fail_over_in_its_two_parts() -> None:
    # The kill at 10.0; the dead collector's partition taken over at 13.5 (its lease
    # expired), its topic's next message at 14.25: 3.5 s for the lease, 0.75 s to subscribe.
    from networkpype.bus.partitions import partition_of
    from networkpype.cli.cluster import ClusterPlan, ClusterResult
    from networkpype.cli.cluster_audit import ClusterAudit

    plan = ClusterPlan(topics=("a", "b"), partitions=4)
    p = partition_of("a", 4)
    other = next(q for q in range(4) if q != p)
    bookkeeping = ClusterAudit()
    for line in [
        _m("a", 1, 9.9),
        {"event": "PartitionAcquired", "partition": other, "at": 12.0},  # not the dead one's
        {"event": "PartitionAcquired", "partition": p, "at": 13.5},
        _gap("a", 1, 40),
        _m("a", 42, 14.25),
    ]:
        bookkeeping.add(line)
    result = ClusterResult(
        plan,
        bookkeeping.report(kills=[10.0]),
        killed_partitions=frozenset({p}),
        kills=[10.0],
        takeovers=bookkeeping.takeovers,
        gap_windows=bookkeeping.gap_windows,
    )
    assert result.failover_parts() == ([3.5], [0.75])
    summary = "\n".join(result.summary())
    assert "kill to lease taken over (TTL 3 s, renewed every 1 s): worst 3.50 s" in summary
    assert "(subscribing): worst 0.75 s" in summary
