"""``AsyncThrottler``: the asyncio face of the rate-limit scheduler.

``async with throttler.execute_task(limit_id):`` returns when the task may start under its
limit and every linked one, and records the use. The decisions are made by the pure
:class:`~networkpype.throttler._core.ThrottlerCore`; this module only turns its start times
into sleeps. A task that has to wait sleeps until exactly the moment capacity frees (a
timer at its reserved start time), not in ``retry_interval`` steps; waiting tasks start in
FIFO order per limit, and a task cancelled while waiting gives its place back, which moves
the tasks behind it earlier.

The facade touches the core only through ``validate``, ``reserve``, ``release`` and
``set_limits`` (plus read-only settings), so the state can move into a throttler actor
without changing what callers see.

Logging: DEBUG when a task has to wait, with the limit and the delay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType

from networkpype.protocol.errors import ConfigurationError
from networkpype.throttler._core import Replan, Reservation, ThrottlerCore
from networkpype.throttler.rate_limit import RateLimit, TaskLog

__all__ = ["AsyncRequestContext", "AsyncThrottler"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Waiter:
    reservation: Reservation
    future: asyncio.Future[None]
    timer: asyncio.TimerHandle | None = None
    error: ConfigurationError | None = None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncThrottler:
    """Keeps tasks within their rate limits (see :mod:`networkpype.throttler.rate_limit`).

    A task of weight w on limit L (capacity C per T seconds) starts only when the weights
    recorded for L in the last T seconds plus w stay within the *effective capacity*
    ``floor(C * (1 - safety_margin_pct) * limits_share_percentage / 100)``, never below 1 for
    ``C > 0``; the same holds for each limit linked to L with the linked weight.

    ``safety_margin_pct`` is a fraction in ``[0, 1)``; ``limits_share_percentage`` a
    ``Decimal`` percent > 0 (``None`` = 100; 50 halves every limit). ``retry_interval`` is
    accepted for compatibility and kept by :meth:`copy`, but is no longer a polling period:
    waiting tasks are woken when capacity frees. ``clock`` (seconds, monotonic; default
    ``time.monotonic``) is the time base of every record. Bad settings raise
    ``ConfigurationError``. Use one throttler from one event loop's thread.
    """

    def __init__(
        self,
        rate_limits: Sequence[RateLimit],
        retry_interval: float = 0.1,
        safety_margin_pct: float = 0.05,
        limits_share_percentage: Decimal | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retry_interval = retry_interval
        self._clock = clock
        self._core = ThrottlerCore(
            rate_limits,
            safety_margin_pct=safety_margin_pct,
            limits_share_percentage=limits_share_percentage,
        )
        self._waiters: dict[int, _Waiter] = {}

    @property
    def rate_limits(self) -> list[RateLimit]:
        """Copies of the declared limits (as given, not scaled by margin or share).

        Setting it replaces every limit at once: uses already recorded keep counting for each
        ``limit_id`` that survives; waiting tasks are rescheduled under the new limits, and a
        waiting task whose limit vanished (or no longer fits) fails with the
        ``ConfigurationError`` / ``UnknownRateLimitError`` that ``execute_task`` would raise.
        """
        return self._core.rate_limits

    @rate_limits.setter
    def rate_limits(self, rate_limits: Sequence[RateLimit]) -> None:
        self._apply(
            self._core.set_limits(rate_limits, self._core.limits_share_percentage, self._clock())
        )

    @property
    def limits_share_percentage(self) -> Decimal:
        """The percent of every limit this throttler may use (``Decimal``, 100 by default).

        Setting it (``None`` = 100) rescales every limit at once, like setting
        :attr:`rate_limits`.
        """
        share = self._core.limits_share_percentage
        return Decimal(100) if share is None else share

    @limits_share_percentage.setter
    def limits_share_percentage(self, limits_share_percentage: Decimal | None) -> None:
        self._apply(
            self._core.set_limits(self._core.rate_limits, limits_share_percentage, self._clock())
        )

    @property
    def safety_margin_pct(self) -> float:
        """The fraction of every limit kept unused, in ``[0, 1)``."""
        return self._core.safety_margin_pct

    @property
    def retry_interval(self) -> float:
        """Kept for compatibility; waiting does not poll (see the class docstring)."""
        return self._retry_interval

    def copy(self) -> AsyncThrottler:
        """A new throttler with the same declared limits and settings and no recorded uses."""
        return AsyncThrottler(
            rate_limits=self._core.rate_limits,
            retry_interval=self._retry_interval,
            safety_margin_pct=self._core.safety_margin_pct,
            limits_share_percentage=self._core.limits_share_percentage,
            clock=self._clock,
        )

    def execute_task(self, limit_id: str) -> AsyncRequestContext:
        """An async context manager that enters when a task on ``limit_id`` may start.

        Raises at once, before any waiting: ``UnknownRateLimitError`` (a ``KeyError``) naming
        the id and the known ids, or ``ConfigurationError`` when the task's weight exceeds an
        effective capacity (it could never run). Entering yields the :class:`TaskLog` of the
        use (``timestamp`` on the throttler's clock).
        """
        rate_limit = self._core.validate(limit_id)
        return AsyncRequestContext(self, limit_id, rate_limit)

    # -- waiting ---------------------------------------------------------------------------

    async def _acquire(self, limit_id: str) -> Reservation:
        now = self._clock()
        reservation = self._core.reserve(limit_id, now)
        if reservation.start_time <= now:
            return reservation
        logger.debug("throttler: task on %r waits %.3f s", limit_id, reservation.start_time - now)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(reservation, loop.create_future())
        self._waiters[reservation.id] = waiter
        try:
            while True:
                self._arm(waiter)
                await waiter.future
                if waiter.error is not None:
                    raise waiter.error
                if self._clock() >= waiter.reservation.start_time:
                    return waiter.reservation
                # Woken early (timer granularity) or rescheduled later: wait again.
                waiter.future = loop.create_future()
        except BaseException:
            self._waiters.pop(reservation.id, None)
            if waiter.error is None:  # a failed reservation is already gone from the core
                self._apply(self._core.release(waiter.reservation, self._clock()))
            raise
        finally:
            self._waiters.pop(reservation.id, None)
            if waiter.timer is not None:
                waiter.timer.cancel()

    def _arm(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        delay = max(0.0, waiter.reservation.start_time - self._clock())
        waiter.timer = waiter.future.get_loop().call_later(delay, _wake, waiter.future)

    def _apply(self, replan: Replan) -> None:
        for reservation in replan.moved:
            waiter = self._waiters.get(reservation.id)
            if waiter is None:
                continue
            waiter.reservation = reservation
            if not waiter.future.done():
                self._arm(waiter)
        for reservation, error in replan.failed:
            waiter = self._waiters.get(reservation.id)
            if waiter is None:
                continue
            waiter.error = error
            _wake(waiter.future)


class AsyncRequestContext:
    """What :meth:`AsyncThrottler.execute_task` returns: ``async with`` it to run one task.

    Entering waits (cancellable; a cancelled wait gives its reservation back) and yields the
    :class:`TaskLog` of the use; leaving does nothing, since the use was recorded at start.
    """

    __slots__ = ("_limit_id", "_rate_limit", "_throttler")

    def __init__(self, throttler: AsyncThrottler, limit_id: str, rate_limit: RateLimit) -> None:
        self._throttler = throttler
        self._limit_id = limit_id
        self._rate_limit = rate_limit

    async def __aenter__(self) -> TaskLog:
        reservation = await self._throttler._acquire(self._limit_id)
        weight = reservation.weights[0][1]
        return TaskLog(reservation.start_time, self._rate_limit, weight)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
