"""The throttler's decisions, without asyncio: a pure function of (state, request, now).

Model. Each limit L has an *effective capacity* C (see :func:`effective_capacity`) and an
interval T seconds. Every admitted task leaves one record per limit it draws on: its start
time s and its weight w on that limit. A record counts against L at time t while
``s <= t < s + T`` (it leaves the window at exactly ``s + T``, its *expiry*). A task may start
at t only if, for each of its limits, the weights of the records counting at t plus its own
weight stay ``<= C``.

Reservations. :meth:`ThrottlerCore.reserve` does not answer "yes/no, try later": it computes
the earliest start time that satisfies every limit and records the task at that time at
once (a *reservation*), so the caller sleeps exactly until then, with no polling. Start times
are FIFO per limit: a task never starts before a task reserved earlier on any limit they
share, so a later task never overtakes an earlier waiting one. Because a new task starts at
or after every record of its limits, checking the one window that ends at its start time is
enough to keep every window of every limit within capacity.

A reservation whose task will not run (cancelled while waiting) is handed back with
:meth:`ThrottlerCore.release`; :meth:`ThrottlerCore.set_limits` replaces the limits. Both
*replan* the reservations still in the future, in their original order: after a release
their start times can only move earlier; after new limits they follow the new capacities,
and a reservation that can no longer be satisfied fails (:class:`Replan`). Records already
started keep counting for every limit whose ``limit_id`` survives.

Times are seconds on one monotonic clock chosen by the caller (``now`` arguments); a ``now``
earlier than a previous one is treated as the previous one. Nothing here sleeps, locks or
reads a clock; the state lives in one owner that serialises the calls: the throttler actor
(:mod:`networkpype.actors.throttler`) behind each ``AsyncThrottler``.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from networkpype.limits.rate_limit import RateLimit, TaskLog
from networkpype.protocol.errors import ConfigurationError, UnknownRateLimitError

__all__ = ["Replan", "Reservation", "ThrottlerCore", "effective_capacity"]

_HUNDRED = Decimal(100)


def effective_capacity(
    limit: int, safety_margin_pct: float, limits_share_percentage: Decimal | None
) -> int:
    """``floor(limit * (1 - safety_margin_pct) * share / 100)``, but at least 1 if ``limit > 0``.

    ``share`` is ``limits_share_percentage`` (a percent; ``None`` means 100). Computed in
    ``Decimal`` so that, say, 100 at a 5 % margin is exactly 95. Flooring keeps the throttler
    on the safe side of the declared limit; the floor at 1 keeps a small positive limit usable
    (``limit=1`` with a margin would otherwise floor to 0 and block every task for ever). A
    ``limit`` of 0 stays 0.
    """
    if limit <= 0:
        return 0
    share = _HUNDRED if limits_share_percentage is None else limits_share_percentage
    raw = Decimal(limit) * (1 - Decimal(str(safety_margin_pct))) * share / _HUNDRED
    return max(1, math.floor(raw))


@dataclass(frozen=True, slots=True)
class Reservation:
    """A task admitted to start at ``start_time`` (seconds, the caller's clock).

    ``weights`` are the ``(limit_id, weight)`` pairs it is recorded against: its own limit
    first, then the linked ones. ``id`` increases with reservation order (FIFO).
    """

    id: int
    limit_id: str
    start_time: float
    weights: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Replan:
    """What a release or a change of limits did to the reservations still waiting.

    ``moved``: the new version of each waiting reservation whose start time changed (same
    ``id``). ``failed``: waiting reservations that were dropped because they can no longer run
    (their limit is gone, or their weight now exceeds a capacity), with the error to raise.
    """

    moved: tuple[Reservation, ...] = ()
    failed: tuple[tuple[Reservation, ConfigurationError], ...] = ()


@dataclass(slots=True)
class _Record:
    start: float
    expiry: float
    weight: int
    reservation_id: int


@dataclass(slots=True)
class _Limit:
    declared: RateLimit
    capacity: int
    # Sorted by start (hence by expiry): every new record starts at or after the last one.
    records: deque[_Record] = field(default_factory=deque)


def _check_margin(safety_margin_pct: float) -> float:
    if not 0 <= safety_margin_pct < 1:
        raise ConfigurationError(f"safety_margin_pct must be in [0, 1), got {safety_margin_pct!r}")
    return float(safety_margin_pct)


def _check_share(share: Decimal | float | None) -> Decimal | None:
    if share is None:
        return None
    value = share if isinstance(share, Decimal) else Decimal(str(share))
    if not value.is_finite() or value <= 0:
        raise ConfigurationError(f"limits_share_percentage must be a percent > 0, got {share!r}")
    return value


class ThrottlerCore:
    """Rate-limit state and scheduling: :meth:`reserve`, :meth:`release`, :meth:`set_limits`.

    ``safety_margin_pct`` is a fraction in ``[0, 1)``; ``limits_share_percentage`` a percent
    ``> 0`` (``None`` = 100). Bad settings, duplicate ``limit_id`` s and links to undeclared
    limits raise ``ConfigurationError``. Not thread-safe: one owner calls it.
    """

    def __init__(
        self,
        rate_limits: Iterable[RateLimit],
        *,
        safety_margin_pct: float = 0.05,
        limits_share_percentage: Decimal | None = None,
    ) -> None:
        self._safety_margin_pct = _check_margin(safety_margin_pct)
        self._share: Decimal | None = None
        self._limits: dict[str, _Limit] = {}
        self._pending: dict[int, Reservation] = {}
        self._next_id = 0
        self._now = -math.inf
        self.set_limits(rate_limits, limits_share_percentage, -math.inf)

    # -- settings --------------------------------------------------------------------------

    @property
    def safety_margin_pct(self) -> float:
        """The fraction of every limit kept unused, in ``[0, 1)``."""
        return self._safety_margin_pct

    @property
    def limits_share_percentage(self) -> Decimal | None:
        """The percent of every limit this core may use; ``None`` means 100."""
        return self._share

    @property
    def rate_limits(self) -> list[RateLimit]:
        """Copies of the declared limits, as given (not scaled by margin or share)."""
        return [copy.deepcopy(lim.declared) for lim in self._limits.values()]

    def capacity(self, limit_id: str) -> int:
        """The effective capacity of ``limit_id`` (units of weight per its interval)."""
        return self._limit(limit_id).capacity

    def set_limits(
        self,
        rate_limits: Iterable[RateLimit],
        limits_share_percentage: Decimal | None,
        now: float,
    ) -> Replan:
        """Replace every limit (and the share) at ``now``; replan the waiting reservations.

        Started records keep counting for each ``limit_id`` that survives, now against its new
        capacity and interval; records of vanished limits are forgotten. Raises
        ``ConfigurationError`` (and changes nothing) on duplicate ids, links to undeclared
        limits or a bad share.
        """
        share = _check_share(limits_share_percentage)
        declared = [copy.deepcopy(rl) for rl in rate_limits]
        ids = [rl.limit_id for rl in declared]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigurationError(f"duplicate rate limit ids: {duplicates}")
        for rl in declared:
            for pair in rl.linked_limits:
                if pair.limit_id not in ids:
                    raise ConfigurationError(
                        f"rate limit {rl.limit_id!r} links to undeclared limit {pair.limit_id!r}"
                    )
        now = self._advance(now)
        limits: dict[str, _Limit] = {}
        for rl in declared:
            old = self._limits.get(rl.limit_id)
            records: deque[_Record] = deque()
            if old is not None:
                interval = rl.time_interval
                records.extend(
                    _Record(r.start, r.start + interval, r.weight, r.reservation_id)
                    for r in old.records
                )
            capacity = effective_capacity(rl.limit, self._safety_margin_pct, share)
            limits[rl.limit_id] = _Limit(rl, capacity, records)
        self._limits = limits
        self._share = share
        return self._replan(now)

    # -- scheduling ------------------------------------------------------------------------

    def validate(self, limit_id: str) -> RateLimit:
        """Check that a task on ``limit_id`` could ever run; return (a copy of) its limit.

        Raises ``UnknownRateLimitError`` naming the id and the known ids, or
        ``ConfigurationError`` when a weight exceeds the effective capacity of its limit.
        """
        self._requirements(limit_id)
        return copy.deepcopy(self._limits[limit_id].declared)

    def reserve(self, limit_id: str, now: float) -> Reservation:
        """Admit a task on ``limit_id`` arriving at ``now``; record it at its start time.

        The start time is the earliest ``t >= now`` at or after every reservation on the same
        limits (FIFO) at which each limit has room for the task's weight; when that is later
        than ``now``, it is exactly the expiry of a record. Raises like :meth:`validate`, with
        no state changed.
        """
        pairs = self._requirements(limit_id)
        now = self._advance(now)
        reservation_id = self._next_id
        self._next_id += 1
        return self._place(reservation_id, limit_id, pairs, now)

    def release(self, reservation: Reservation, now: float) -> Replan:
        """Forget a reservation whose task will not run; replan the others still waiting.

        Call it only for a task that never started its work (its records are removed, so it
        stops counting). Releasing twice, or after its limit vanished, is harmless.
        """
        now = self._advance(now)
        self._pending.pop(reservation.id, None)
        for limit_id, _ in reservation.weights:
            lim = self._limits.get(limit_id)
            if lim is not None:
                lim.records = deque(r for r in lim.records if r.reservation_id != reservation.id)
        return self._replan(now)

    def within_capacity(self, limit_id: str, now: float) -> bool:
        """Whether a task on ``limit_id`` arriving at ``now`` would start at once (nothing
        recorded: a dry run of :meth:`reserve`). Raises like :meth:`validate`."""
        pairs = self._requirements(limit_id)
        now = self._advance(now)
        return self._earliest(pairs, now) <= now

    def flush(self, now: float) -> None:
        """Forget the records whose window has passed at ``now`` (they no longer count; the
        scheduler also forgets them lazily, so calling this is never required)."""
        now = self._advance(now)
        for lim in self._limits.values():
            records = lim.records
            while records and records[0].expiry <= now:
                records.popleft()

    def task_logs(self) -> list[TaskLog]:
        """Every record still held (started ones inside their window, and reserved future
        ones), sorted by timestamp; ``timestamp`` is on the caller's clock."""
        logs = [
            TaskLog(r.start, lim.declared, r.weight)
            for lim in self._limits.values()
            for r in lim.records
        ]
        logs.sort(key=lambda log: log.timestamp)
        return logs

    # -- internals -------------------------------------------------------------------------

    def _advance(self, now: float) -> float:
        if now > self._now:
            self._now = now
        return self._now

    def _limit(self, limit_id: str) -> _Limit:
        lim = self._limits.get(limit_id)
        if lim is None:
            raise UnknownRateLimitError(
                f"unknown rate limit id {limit_id!r}; known ids: {sorted(self._limits)}"
            )
        return lim

    def _requirements(self, limit_id: str) -> tuple[tuple[str, int], ...]:
        declared = self._limit(limit_id).declared
        weights: dict[str, int] = {limit_id: declared.weight}
        for pair in declared.linked_limits:
            weights[pair.limit_id] = weights.get(pair.limit_id, 0) + pair.weight
        for lid, weight in weights.items():
            capacity = self._limits[lid].capacity
            if weight > capacity:
                raise ConfigurationError(
                    f"a task on {limit_id!r} costs {weight} units of {lid!r}, whose effective "
                    f"capacity is {capacity} (limit {self._limits[lid].declared.limit}, safety "
                    f"margin {self._safety_margin_pct}, share {self._share or _HUNDRED} %): "
                    "it could never run"
                )
        return tuple(weights.items())

    def _place(
        self,
        reservation_id: int,
        limit_id: str,
        pairs: tuple[tuple[str, int], ...],
        now: float,
    ) -> Reservation:
        earliest = self._earliest(pairs, now)
        for lid, weight in pairs:
            lim = self._limits[lid]
            lim.records.append(
                _Record(earliest, earliest + lim.declared.time_interval, weight, reservation_id)
            )
        reservation = Reservation(reservation_id, limit_id, earliest, pairs)
        if earliest > now:
            self._pending[reservation_id] = reservation
        return reservation

    def _earliest(self, pairs: tuple[tuple[str, int], ...], now: float) -> float:
        """The earliest start at or after ``now`` for a task needing ``pairs`` (expired
        records are dropped on the way; nothing is recorded)."""
        # FIFO: not before anything already recorded on these limits.
        start = now
        for lid, _ in pairs:
            records = self._limits[lid].records
            while records and records[0].expiry <= now:
                records.popleft()
            if records and records[-1].start > start:
                start = records[-1].start
        # Every record now starts at or before `start`, so the load on a limit only falls as
        # time passes: each limit's own earliest time, then the latest of them, fits them all.
        earliest = start
        for lid, weight in pairs:
            lim = self._limits[lid]
            excess = sum(r.weight for r in lim.records if r.expiry > start) + weight
            excess -= lim.capacity
            if excess <= 0:
                continue
            for r in lim.records:
                if r.expiry <= start:
                    continue
                excess -= r.weight
                if excess <= 0:
                    earliest = max(earliest, r.expiry)
                    break
        return earliest

    def _replan(self, now: float) -> Replan:
        waiting = sorted(
            (r for r in self._pending.values() if r.start_time > now), key=lambda r: r.id
        )
        self._pending = {}
        if not waiting:
            return Replan()
        waiting_ids = {r.id for r in waiting}
        for lim in self._limits.values():
            lim.records = deque(r for r in lim.records if r.reservation_id not in waiting_ids)
        moved: list[Reservation] = []
        failed: list[tuple[Reservation, ConfigurationError]] = []
        for old in waiting:
            try:
                pairs = self._requirements(old.limit_id)
            except ConfigurationError as exc:
                failed.append((old, exc))
                continue
            new = self._place(old.id, old.limit_id, pairs, now)
            if new != old:
                moved.append(new)
        return Replan(tuple(moved), tuple(failed))
