"""Faults as values, and reproducible schedules of them.

A fault is a frozen, tagged msgspec Struct that :meth:`FaultProxy.apply
<networkpype.testing.FaultProxy.apply>` switches on or off. A :class:`ChaosSchedule` is a
seed plus a sorted list of ``(at_seconds, fault)`` events; built without ``events`` it draws
them from ``random.Random(seed)``, so the seed printed by a failing test replays the same
schedule. Nothing here touches a socket or an event loop.

Fault episodes drawn by :func:`random_events` never overlap, and each one that switches a fault
on also switches it off, so a generated schedule ends with the proxy healed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, TypeAlias

import msgspec

from networkpype.protocol.errors import ConfigurationError

__all__ = [
    "DEFAULT_KINDS",
    "Bandwidth",
    "Blackhole",
    "ChaosEvent",
    "ChaosSchedule",
    "Fault",
    "FaultKind",
    "Heal",
    "Latency",
    "RefuseNew",
    "Reset",
    "Stall",
    "random_events",
]


class _FaultBase(msgspec.Struct, frozen=True, tag_field="fault", forbid_unknown_fields=True):
    pass


class Reset(_FaultBase, frozen=True, tag="reset"):
    """Reset (TCP RST) one connection, or every open connection when ``conn_id`` is None."""

    conn_id: int | None = None


class Blackhole(_FaultBase, frozen=True, tag="blackhole"):
    """Drop every byte both ways while ``on``, keeping the sockets open (a half-open link)."""

    on: bool = True
    conn_id: int | None = None


class Stall(_FaultBase, frozen=True, tag="stall"):
    """Hold every byte both ways while ``on`` (nothing dropped; backpressure builds up)."""

    on: bool = True
    conn_id: int | None = None


class Latency(_FaultBase, frozen=True, tag="latency"):
    """Delay each direction by ``seconds`` (one way); 0 removes the delay."""

    seconds: float
    conn_id: int | None = None


class Bandwidth(_FaultBase, frozen=True, tag="bandwidth"):
    """Limit each direction to ``bytes_per_second``; None removes the limit."""

    bytes_per_second: float | None
    conn_id: int | None = None


class RefuseNew(_FaultBase, frozen=True, tag="refuse_new"):
    """Reset new connections as they are accepted: for ``seconds``, or until switched off."""

    seconds: float | None = None
    on: bool = True


class Heal(_FaultBase, frozen=True, tag="heal"):
    """Switch every fault off, proxy-wide and on every connection."""


Fault: TypeAlias = Reset | Blackhole | Stall | Latency | Bandwidth | RefuseNew | Heal
FaultKind: TypeAlias = type[Reset | Blackhole | Stall | Latency | Bandwidth | RefuseNew]

DEFAULT_KINDS: tuple[FaultKind, ...] = (Reset, Blackhole, Stall, Latency, Bandwidth, RefuseNew)
"""The fault kinds :func:`random_events` draws from unless told otherwise."""


class ChaosEvent(NamedTuple):
    """Apply ``fault`` ``at_seconds`` after the schedule starts (monotonic seconds)."""

    at_seconds: float
    fault: Fault


def random_events(
    rng: random.Random,
    *,
    duration_seconds: float,
    mean_gap_seconds: float,
    max_fault_seconds: float,
    max_latency_seconds: float = 0.2,
    bytes_per_second_range: tuple[float, float] = (1_000.0, 1_000_000.0),
    kinds: Sequence[FaultKind] = DEFAULT_KINDS,
) -> Iterator[ChaosEvent]:
    """Yield proxy-wide fault episodes drawn from ``rng``, in time order.

    Episodes start after exponentially distributed quiet gaps (mean ``mean_gap_seconds``),
    last up to ``max_fault_seconds`` and end by ``duration_seconds``; a reset is instant.
    Latency is uniform in [0, ``max_latency_seconds``]; bandwidth is log-uniform in
    ``bytes_per_second_range``. The same ``rng`` state gives the same events.
    """
    if not kinds:
        raise ConfigurationError("random_events: kinds is empty")
    if min(duration_seconds, mean_gap_seconds, max_fault_seconds) <= 0:
        raise ConfigurationError(
            "random_events: duration_seconds, mean_gap_seconds and max_fault_seconds must be > 0"
        )
    low, high = bytes_per_second_range
    if not 0 < low <= high:
        raise ConfigurationError(f"random_events: bad bytes_per_second_range {low}..{high}")

    def episode(kind: FaultKind) -> tuple[Fault, Fault | None]:
        """The fault that starts an episode of ``kind``, and the one that ends it."""
        if kind is Reset:
            return Reset(), None
        if kind is Blackhole:
            return Blackhole(on=True), Blackhole(on=False)
        if kind is Stall:
            return Stall(on=True), Stall(on=False)
        if kind is Latency:
            return Latency(round(rng.uniform(0.0, max_latency_seconds), 3)), Latency(0.0)
        if kind is Bandwidth:
            rate = round(low * (high / low) ** rng.random())
            return Bandwidth(float(rate)), Bandwidth(None)
        return RefuseNew(on=True), RefuseNew(on=False)

    at = rng.expovariate(1.0 / mean_gap_seconds)
    while at < duration_seconds:
        start, stop = episode(rng.choice(kinds))
        length = min(rng.uniform(0.1, 1.0) * max_fault_seconds, duration_seconds - at)
        yield ChaosEvent(round(at, 3), start)
        end = at
        if stop is not None:
            end = at + length
            yield ChaosEvent(round(end, 3), stop)
        at = end + rng.expovariate(1.0 / mean_gap_seconds)


class ChaosSchedule:
    """A reproducible list of fault events, identified by ``seed``.

    ``ChaosSchedule(seed, events)`` keeps the given events (sorted by time, stable);
    ``ChaosSchedule(seed)`` draws them with :func:`random_events` from ``random.Random(seed)``
    using the keyword arguments (seconds). Iterating yields :class:`ChaosEvent` tuples; print
    the schedule (its ``repr`` starts with the seed) when a test that played it fails.
    Play it with :meth:`FaultProxy.play <networkpype.testing.FaultProxy.play>`.
    """

    __slots__ = ("events", "seed")

    def __init__(
        self,
        seed: int,
        events: Iterable[ChaosEvent | tuple[float, Fault]] | None = None,
        *,
        duration_seconds: float = 2.0,
        mean_gap_seconds: float = 0.25,
        max_fault_seconds: float = 0.5,
        kinds: Sequence[FaultKind] = DEFAULT_KINDS,
    ) -> None:
        self.seed = seed
        if events is None:
            events = random_events(
                random.Random(seed),
                duration_seconds=duration_seconds,
                mean_gap_seconds=mean_gap_seconds,
                max_fault_seconds=max_fault_seconds,
                kinds=kinds,
            )
        ordered = sorted(
            (ChaosEvent(*event) for event in events), key=lambda event: event.at_seconds
        )
        if ordered and ordered[0].at_seconds < 0:
            raise ConfigurationError(f"ChaosSchedule: negative time {ordered[0].at_seconds}")
        self.events: tuple[ChaosEvent, ...] = tuple(ordered)

    @property
    def duration_seconds(self) -> float:
        """The time of the last event, in seconds (0 for an empty schedule)."""
        return self.events[-1].at_seconds if self.events else 0.0

    def __iter__(self) -> Iterator[ChaosEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChaosSchedule):
            return NotImplemented
        return (self.seed, self.events) == (other.seed, other.events)

    def __hash__(self) -> int:
        return hash((self.seed, self.events))

    def __repr__(self) -> str:
        lines = "".join(f"\n  {at:8.3f}s {fault!r}" for at, fault in self.events)
        return f"ChaosSchedule(seed={self.seed}, {len(self.events)} events){lines}"
