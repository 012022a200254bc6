"""The demo's audit, as pure code: no event loop, no sockets, times given."""

from __future__ import annotations

import pytest

from networkpype.cli.audit import StreamAudit
from networkpype.protocol.events import (
    Disconnected,
    GaveUp,
    MessagesDropped,
    Reconnected,
    RotationFinished,
    RotationStarted,
)

URL = "ws://127.0.0.1:1/ws"


def down(cid: str) -> Disconnected:
    return Disconnected(connection_id=cid, at=0.0, cause="reset", error="ConnectionClosedError")


def back(cid: str) -> Reconnected:
    return Reconnected(connection_id=cid, at=0.0, url=URL, downtime=0.5)


def test_a_gap_after_its_connections_disconnected_is_reported() -> None:
    audit = StreamAudit()
    audit.expect(["a", "b"])
    assert audit.on_message("a", 1, "shard1", 0.0) is None
    assert audit.on_message("b", 1, "shard2", 0.0) is None
    audit.on_event(down("shard1"), 1.0)
    recovery = audit.on_event(back("shard1"), 1.25)
    assert recovery is not None
    assert (recovery.connection_id, recovery.seconds, recovery.cause) == (
        "shard1",
        0.25,
        "ConnectionClosedError",
    )
    gap = audit.on_message("a", 5, "shard1", 1.5)
    assert gap is not None and gap.reported and gap.missed == 3
    report = audit.report()
    assert (report.reported_gaps, report.missed_messages, report.reconnects) == (1, 3, 1)
    assert report.unreported_gaps == ()
    assert report.worst_recovery == recovery


def test_a_gap_without_an_event_of_its_own_connection_is_not_reported() -> None:
    audit = StreamAudit()
    audit.on_message("a", 1, "shard1", 0.0)
    audit.on_event(down("shard2"), 0.5)  # another connection
    gap = audit.on_message("a", 3, "shard1", 1.0)
    assert gap is not None and not gap.reported
    assert not audit.report().ok


def test_an_event_before_the_previous_message_does_not_excuse_a_later_gap() -> None:
    audit = StreamAudit()
    audit.on_event(down("shard1"), 0.0)
    audit.on_event(back("shard1"), 0.1)
    audit.on_message("a", 1, "shard1", 0.2)
    gap = audit.on_message("a", 3, "shard1", 0.3)
    assert gap is not None and not gap.reported


@pytest.mark.parametrize(
    "event",
    [
        RotationStarted(connection_id="shard1", at=0.0, replacement="shard4"),
        RotationStarted(connection_id="shard4", at=0.0, replacement="shard1"),
        GaveUp(connection_id="shard1", at=0.0, cause="fatal"),
        MessagesDropped(connection_id="*", at=0.0, count=3),
    ],
)
def test_rotation_give_up_and_drops_announce_gaps(event: object) -> None:
    audit = StreamAudit()
    audit.on_message("a", 1, "shard1", 0.0)
    audit.on_event(event, 0.5)  # type: ignore[arg-type]
    gap = audit.on_message("a", 9, "shard1", 1.0)
    assert gap is not None and gap.reported


def test_rotation_replacing_a_down_connection_ends_its_outage() -> None:
    audit = StreamAudit()
    audit.on_event(down("shard1"), 1.0)
    recovery = audit.on_event(
        RotationStarted(connection_id="shard1", at=0.0, replacement="shard4"), 1.75
    )
    assert recovery is not None and recovery.seconds == 0.75
    audit.on_event(
        RotationFinished(
            connection_id="shard1", at=0.0, replacement="shard4", duplicates_removed=7
        ),
        2.0,
    )
    report = audit.report()
    assert (report.rotations, report.duplicates_removed, report.still_down) == (1, 7, ())
    assert audit.rotations_in_flight == 0


def test_duplicates_and_reordering_are_counted_not_gaps() -> None:
    audit = StreamAudit()
    for seq in (1, 2, 2, 1, 3):
        assert audit.on_message("a", seq, "shard1", 0.0) is None
    report = audit.report()
    assert (report.messages, report.out_of_order, report.missed_messages) == (5, 2, 0)


def test_topics_lost_are_those_silent_since_the_last_fault() -> None:
    audit = StreamAudit()
    audit.expect(["a", "b", "never"])
    audit.on_message("a", 1, "shard1", 1.0)
    audit.on_message("b", 1, "shard1", 1.0)
    audit.on_fault(2.0)
    audit.on_message("a", 2, "shard1", 2.5)
    report = audit.report()
    assert report.topics_lost == ("b", "never")
    assert not report.ok


def test_a_clean_run_is_ok_and_a_gave_up_connection_is_not() -> None:
    audit = StreamAudit()
    audit.expect(["a"])
    audit.on_fault(0.5)
    audit.on_message("a", 1, "shard1", 1.0)
    assert audit.report().ok
    audit.on_event(GaveUp(connection_id="shard1", at=0.0, cause="fatal"), 2.0)
    assert audit.report().gave_up == ("shard1",)
    assert not audit.report().ok
    assert not StreamAudit().report().ok  # nothing arrived
