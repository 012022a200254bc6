"""The demo's bookkeeping of what arrived, as pure code: sequence gaps and whether each was
announced, recovery times, topics lost.

The exchange simulator numbers each topic's events (``seq``) for the whole venue, so a
client that loses a connection and resubscribes sees ``seq`` jump by exactly what it
missed. The library promises that such a hole never comes unannounced: before it, the
stream carries a ``Disconnected`` (or a ``RotationStarted``) of the connection that carries
the topic. :class:`StreamAudit` checks that promise message by message.

No clock is read here: every call gets ``now``, seconds of ``time.monotonic()``. A message
counts as received when the consumer takes it, which trails the socket by the queue's
depth (a few milliseconds while the consumer keeps up).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import msgspec

from networkpype.protocol.events import (
    ConnectionEvent,
    Disconnected,
    GaveUp,
    MessagesDropped,
    Reconnected,
    RotationFinished,
    RotationStarted,
)

__all__ = ["AuditReport", "Gap", "Recovery", "StreamAudit"]


class Gap(msgspec.Struct, frozen=True):
    """``missed`` events of ``topic`` (``seq`` went from ``after`` to ``after + missed + 1``);
    ``reported`` when a gap event of its connection came first."""

    topic: str
    connection_id: str | None
    after: int
    missed: int
    reported: bool


class Recovery(msgspec.Struct, frozen=True):
    """``connection_id`` was down ``seconds`` (from ``Disconnected`` to ``Reconnected``, or to
    the ``RotationStarted`` of a replacement); ``cause`` is the Disconnected's error class."""

    connection_id: str
    seconds: float
    cause: str


class AuditReport(msgspec.Struct, frozen=True):
    """What :meth:`StreamAudit.report` found. ``topics_lost``: topics with no message after
    the last fault; ``unreported_gaps``: gaps no gap event announced. Both must be empty."""

    messages: int
    reconnects: int
    rotations: int
    duplicates_removed: int
    out_of_order: int
    gave_up: tuple[str, ...]
    recoveries: tuple[Recovery, ...]
    still_down: tuple[str, ...]
    reported_gaps: int
    missed_messages: int
    unreported_gaps: tuple[Gap, ...]
    topics_lost: tuple[str, ...]

    @property
    def worst_recovery(self) -> Recovery | None:
        return max(self.recoveries, key=lambda r: r.seconds, default=None)

    @property
    def median_recovery(self) -> float | None:
        return statistics.median(r.seconds for r in self.recoveries) if self.recoveries else None

    @property
    def ok(self) -> bool:
        """Data arrived, nothing was lost or unannounced, and no connection was given up."""
        return (
            self.messages > 0
            and not self.topics_lost
            and not self.unreported_gaps
            and not self.gave_up
        )


@dataclass
class _Topic:
    last_seq: int | None = None
    last_at: float | None = None
    tick: int = 0  # the audit's tick when the last message arrived


@dataclass
class StreamAudit:
    """Feed it every item of ``iter_messages(events=True)`` in order, and the faults as they
    are injected; ask :meth:`report` at the end.

    A gap is *reported* when, since the topic's previous message, a ``Disconnected`` or
    ``GaveUp`` of the topic's connection, a ``RotationStarted`` naming it (as the old or the
    new one), or a ``MessagesDropped`` came through the stream.
    """

    topics: dict[str, _Topic] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    messages: int = 0
    reconnects: int = 0
    rotations: int = 0
    rotations_in_flight: int = 0
    duplicates_removed: int = 0
    out_of_order: int = 0
    last_fault_at: float | None = None
    _tick: int = 0
    _disrupted: dict[str, int] = field(default_factory=dict)  # connection -> tick of last event
    _down: dict[str, tuple[float, str]] = field(default_factory=dict)  # connection -> since, why
    _gave_up: list[str] = field(default_factory=list)

    def expect(self, topics: list[str]) -> None:
        """Topics that must keep receiving (a topic never heard of counts as lost)."""
        for topic in topics:
            self.topics.setdefault(topic, _Topic())

    def on_fault(self, now: float) -> None:
        """A fault was injected at ``now``: every topic must receive something after it."""
        self.last_fault_at = now

    def on_message(self, topic: str, seq: int, connection_id: str | None, now: float) -> Gap | None:
        """One data message of ``topic`` carried (now) by ``connection_id``; the gap it
        reveals, if any. A ``seq`` at or below the last one is counted as out of order."""
        self.messages += 1
        state = self.topics.setdefault(topic, _Topic())
        last = state.last_seq
        gap = None
        if last is not None and seq <= last:
            self.out_of_order += 1
            return None
        if last is not None and seq > last + 1:
            since = max(self._disrupted.get(connection_id or "", -1), self._disrupted.get("*", -1))
            gap = Gap(topic, connection_id, last, seq - last - 1, reported=since >= state.tick)
            self.gaps.append(gap)
        state.last_seq, state.last_at, state.tick = seq, now, self._tick + 1
        return gap

    def on_event(self, event: ConnectionEvent, now: float) -> Recovery | None:
        """One lifecycle event; the recovery it completes, if any."""
        self._tick += 2  # messages after it get a later tick than anything before it
        match event:
            case Disconnected(connection_id=cid, error=error):
                self._disrupt(cid)
                self._down.setdefault(cid, (now, error))
            case Reconnected(connection_id=cid):
                self.reconnects += 1
                return self._recovered(cid, now)
            case RotationStarted(connection_id=old, replacement=new):
                self.rotations += 1
                self.rotations_in_flight += 1
                self._disrupt(old)
                self._disrupt(new)
                return self._recovered(old, now)  # a down connection replaced is back
            case RotationFinished(duplicates_removed=removed):
                self.rotations_in_flight = max(0, self.rotations_in_flight - 1)
                self.duplicates_removed += removed
            case GaveUp(connection_id=cid):
                self._disrupt(cid)
                self._gave_up.append(cid)
            case MessagesDropped():
                self._disrupt("*")
        return None

    def _disrupt(self, connection_id: str) -> None:
        self._disrupted[connection_id] = self._tick

    def _recovered(self, connection_id: str, now: float) -> Recovery | None:
        down = self._down.pop(connection_id, None)
        if down is None:
            return None
        since, cause = down
        recovery = Recovery(connection_id, now - since, cause)
        self.recoveries.append(recovery)
        return recovery

    def silent_topics(self, after: float | None) -> list[str]:
        """Topics with no message after ``after`` (all topics never heard of)."""
        return [
            topic
            for topic, state in self.topics.items()
            if state.last_at is None or (after is not None and state.last_at <= after)
        ]

    def report(self) -> AuditReport:
        """A frozen summary of everything fed so far."""
        reported = [g for g in self.gaps if g.reported]
        return AuditReport(
            messages=self.messages,
            reconnects=self.reconnects,
            rotations=self.rotations,
            duplicates_removed=self.duplicates_removed,
            out_of_order=self.out_of_order,
            gave_up=tuple(self._gave_up),
            recoveries=tuple(self.recoveries),
            still_down=tuple(self._down),
            reported_gaps=len(reported),
            missed_messages=sum(g.missed for g in self.gaps),
            unreported_gaps=tuple(g for g in self.gaps if not g.reported),
            topics_lost=tuple(self.silent_topics(self.last_fault_at)),
        )
