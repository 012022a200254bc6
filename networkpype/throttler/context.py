"""``AsyncRequestContext``: what ``AsyncThrottler.execute_task`` returns.

``async with throttler.execute_task(limit_id):`` waits until the task may start under its
limit and every linked one, and records the use (see :mod:`networkpype.throttler.throttler`).
The NetworkPype methods are here too, for code written against them: ``acquire()`` (what
entering does), ``within_capacity()`` (would a task start now?), ``flush()`` (forget uses
whose window has passed) and ``logger()``. When a task has to wait for capacity, a WARNING
says so, at most once per ``MAX_CAPACITY_REACHED_WARNING_INTERVAL`` seconds per limit.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from networkpype.limits.rate_limit import RateLimit, TaskLog

if TYPE_CHECKING:
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = ["AsyncRequestContext"]

logger = logging.getLogger(__name__)


class AsyncRequestContext:
    """One task's admission under a rate limit: ``async with`` it, or ``await acquire()``.

    Entering waits (cancellable; a cancelled wait gives its reservation back) and yields the
    :class:`TaskLog` of the use; leaving does nothing, since the use was recorded at start.
    Each ``acquire()`` records one use. Made by :meth:`AsyncThrottler.execute_task`, which
    has already checked the limit id.
    """

    MAX_CAPACITY_REACHED_WARNING_INTERVAL: ClassVar[float] = 30.0
    """Seconds between two warnings that tasks on one limit wait for capacity."""

    # Monotonic time (the throttler's clock) of the last warning, per limit id.
    _last_warning: ClassVar[dict[str, float]] = {}

    __slots__ = ("_limit_id", "_rate_limit", "_throttler")

    def __init__(self, throttler: AsyncThrottler, limit_id: str, rate_limit: RateLimit) -> None:
        self._throttler = throttler
        self._limit_id = limit_id
        self._rate_limit = rate_limit

    @classmethod
    def logger(cls) -> logging.Logger:
        """The module's logger (NetworkPype's classmethod; the same object every call)."""
        return logger

    def within_capacity(self) -> bool:
        """True when a task on this limit would start now (its limit and every linked one
        have room, and no earlier task waits). Records nothing."""
        return self._throttler._within_capacity(self._limit_id)

    def flush(self) -> None:
        """Forget recorded uses whose window has passed. Never required: the throttler
        forgets them by itself as it schedules."""
        self._throttler._flush()

    async def acquire(self) -> TaskLog:
        """Wait until the task may start, record the use, and return its :class:`TaskLog`
        (``timestamp`` on the throttler's clock: when the task was allowed to start)."""
        throttler = self._throttler
        asked_at = throttler._clock()
        must_wait = not throttler._within_capacity(self._limit_id)
        reservation = await throttler._acquire(self._limit_id)
        if must_wait:
            self._warn_waiting(throttler._clock() - asked_at, asked_at)
        weight = reservation.weights[0][1]
        return TaskLog(reservation.start_time, self._rate_limit, weight)

    def _warn_waiting(self, waited: float, now: float) -> None:
        last = self._last_warning.get(self._limit_id)
        if last is not None and now - last < self.MAX_CAPACITY_REACHED_WARNING_INTERVAL:
            return
        self._last_warning[self._limit_id] = now
        limit = self._rate_limit
        logger.warning(
            "rate limit %r (%d per %g s) is at capacity: a task waited %.3f s (next warning "
            "in %g s at the earliest)",
            limit.limit_id,
            limit.limit,
            limit.time_interval,
            waited,
            self.MAX_CAPACITY_REACHED_WARNING_INTERVAL,
        )

    async def __aenter__(self) -> TaskLog:
        return await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
