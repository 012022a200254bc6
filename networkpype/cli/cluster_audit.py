"""The cluster demo's bookkeeping, as pure code: what a bus consumer wrote (``networkpype
consume --format audit --events``), checked for loss, duplicates and gaps.

The exchange simulator numbers each topic's events for the whole venue (``seq``), so the
consumer's output shows exactly what the bus holds. For each topic, in the order written:

* a ``seq`` written twice is a **duplicate** (``redelivered`` when the second copy was
  marked as a redelivery after a consumer crash: announced, not silent);
* a jump in ``seq`` is a **gap**: *reported* when the consumer wrote a ``SequenceGap``
  record for exactly it just before (the bus never had those messages: a collector was
  down), *unreported* otherwise (something the bus had was lost on its way: never allowed).

``t`` (Unix seconds of receipt) dates each line, or ``rx`` where the collector stamped its
own receipt (``--stamp``: Unix ns), which a consumer's backlog does not shift; :func:`audit`
also measures, for a
``kill`` at time ``K``, how long each topic whose gap spans ``K`` waited for its next
message: the fail-over time.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClusterAudit", "ClusterReport", "audit"]


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """What :func:`audit` found. ``gaps``/``missed``: reported gaps and the messages they
    cover; ``gap_topics``: the topics with a reported gap; ``recoveries``: seconds from
    the kill to each gapped topic's next message."""

    messages: int
    topics: int
    duplicates: int
    redelivered: int
    gaps: int
    missed: int
    gap_topics: frozenset[str]
    unreported_gaps: int
    unreported_missed: int
    records: Mapping[str, int]
    recoveries: tuple[float, ...]
    silent_topics: tuple[str, ...]

    @property
    def worst_recovery(self) -> float | None:
        return max(self.recoveries) if self.recoveries else None

    @property
    def median_recovery(self) -> float | None:
        return statistics.median(self.recoveries) if self.recoveries else None


@dataclass
class ClusterAudit:
    """Fed line by line (:meth:`add`), read at the end (:meth:`report`)."""

    last_seq: dict[str, int] = field(default_factory=dict)
    seen: dict[str, set[int]] = field(default_factory=dict)
    last_time: dict[str, float] = field(default_factory=dict)
    last_receipt: dict[str, float] = field(default_factory=dict)  # the consumer's ``t``
    pending_gap: dict[str, tuple[int, int]] = field(default_factory=dict)
    messages: int = 0
    duplicates: int = 0
    redelivered: int = 0
    gaps: int = 0
    missed: int = 0
    gap_topics: set[str] = field(default_factory=set)
    unreported_gaps: int = 0
    unreported_missed: int = 0
    records: dict[str, int] = field(default_factory=dict)
    gap_windows: list[tuple[str, float, float]] = field(default_factory=list)
    unreported_windows: list[tuple[str, float, float]] = field(default_factory=list)
    takeovers: list[tuple[int, float]] = field(default_factory=list)
    """(partition, Unix time) of each ``PartitionAcquired`` record, in order."""

    def add(self, line: Mapping[str, Any]) -> None:
        """One line of the consumer's output."""
        event = line.get("event")
        if event is not None:
            self.records[event] = self.records.get(event, 0) + 1
            if event == "SequenceGap":
                self.pending_gap[line["topic"]] = (line["after"], line["missed"])
            elif event == "PartitionAcquired":
                self.takeovers.append((line["partition"], line["at"]))
            return
        topic, seq = line["topic"], line["seq"]
        # When the collector stamped it, the time it left the venue's socket: what a fault
        # cost is then measured at the collectors, whatever the consumer's backlog.
        rx = line.get("rx")
        t = rx / 1e9 if rx is not None else line["t"]
        self.messages += 1
        seen = self.seen.setdefault(topic, set())
        if seq in seen:
            if line.get("r"):
                self.redelivered += 1
            else:
                self.duplicates += 1
            return
        seen.add(seq)
        last = self.last_seq.get(topic)
        gap = self.pending_gap.pop(topic, None)
        if last is not None and seq > last + 1:
            if gap == (last, seq - last - 1):
                self.gaps += 1
                self.missed += seq - last - 1
                self.gap_topics.add(topic)
                self.gap_windows.append((topic, self.last_time.get(topic, t), t))
            else:
                self.unreported_gaps += 1
                self.unreported_missed += seq - last - 1
                self.unreported_windows.append((topic, self.last_time.get(topic, t), t))
        if last is None or seq > last:
            self.last_seq[topic] = seq
        self.last_time[topic] = t
        self.last_receipt[topic] = line["t"]

    def report(
        self, *, kills: Iterable[float] = (), expected_topics: Iterable[str] = (), since: float = 0
    ) -> ClusterReport:
        """The findings; ``kills``: Unix times of collector kills (for the recoveries);
        ``expected_topics``/``since``: topics that must have a message after ``since``."""
        recoveries = [
            resumed - kill
            for kill in kills
            for _topic, before, resumed in self.gap_windows
            if before <= kill <= resumed
        ]
        silent = tuple(
            sorted(t for t in expected_topics if self.last_time.get(t, 0.0) < since)
        )
        return ClusterReport(
            messages=self.messages,
            topics=len(self.seen),
            duplicates=self.duplicates,
            redelivered=self.redelivered,
            gaps=self.gaps,
            missed=self.missed,
            gap_topics=frozenset(self.gap_topics),
            unreported_gaps=self.unreported_gaps,
            unreported_missed=self.unreported_missed,
            records=dict(self.records),
            recoveries=tuple(recoveries),
            silent_topics=silent,
        )


def audit(lines: Iterable[Mapping[str, Any]], **report_options: Any) -> ClusterReport:
    """Audit every line at once; options as :meth:`ClusterAudit.report`."""
    bookkeeping = ClusterAudit()
    for line in lines:
        bookkeeping.add(line)
    return bookkeeping.report(**report_options)
