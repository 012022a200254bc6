"""The throttler actor: the one owner of the rate-limit state.

It holds a pure :class:`~networkpype.limits.core.ThrottlerCore` and the tasks waiting on
it. ``Acquire`` reserves the earliest start a task's limits allow and replies with a future
that a timer resolves at exactly that moment (no polling); ``Release`` hands back the place
of a task whose wait was cancelled, which moves the tasks behind it earlier; ``SetLimits``
replaces the limits and replans every waiting task. The handlers never wait, so the inbox
stays free; waiters may sit on any event loop (the futures are thread-safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from networkpype.limits.core import Replan, Reservation, ThrottlerCore
from networkpype.protocol.messages import Acquire, Release, SetLimits
from networkpype.runtime import AsyncioActor, AsyncioFuture

__all__ = ["ThrottlerActor"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Waiter:
    reservation: Reservation
    future: AsyncioFuture[Reservation]
    timer: asyncio.TimerHandle | None = None


class ThrottlerActor(AsyncioActor):
    """Owns ``core`` (nothing else may call it while the actor runs); ``clock`` is the
    monotonic time base of every record, in seconds."""

    def __init__(self, core: ThrottlerCore, clock: Callable[[], float]) -> None:
        super().__init__()
        self._core = core
        self._clock = clock
        self._waiters: dict[int, _Waiter] = {}  # by reservation id
        self._tokens: dict[int, int] = {}  # caller's token -> reservation id, while waiting

    def on_receive(self, message: Any) -> Any:
        match message:
            case Acquire(limit_id=limit_id, token=token):
                return self._acquire(limit_id, token)
            case Release(token=token):
                self._release(token)
            case SetLimits(rate_limits=limits, limits_share_percentage=share):
                self._apply(self._core.set_limits(limits, share, self._clock()))
            case _:
                return super().on_receive(message)
        return None

    def on_stop(self) -> None:
        for waiter in self._waiters.values():
            if waiter.timer is not None:
                waiter.timer.cancel()
        self._waiters.clear()
        self._tokens.clear()

    def _acquire(self, limit_id: str, token: int) -> AsyncioFuture[Reservation]:
        now = self._clock()
        reservation = self._core.reserve(limit_id, now)
        future: AsyncioFuture[Reservation] = AsyncioFuture()
        if reservation.start_time <= now:
            future.set(reservation)
            return future
        logger.debug("throttler: task on %r waits %.3f s", limit_id, reservation.start_time - now)
        waiter = _Waiter(reservation, future)
        self._waiters[reservation.id] = waiter
        self._tokens[token] = reservation.id
        self._arm(waiter)
        return future

    def _release(self, token: int) -> None:
        reservation_id = self._tokens.pop(token, None)
        if reservation_id is None:
            return  # it never had to wait, started already, or failed
        waiter = self._waiters.pop(reservation_id, None)
        if waiter is None:
            return  # it started, or failed: nothing to give back
        if waiter.timer is not None:
            waiter.timer.cancel()
        self._apply(self._core.release(waiter.reservation, self._clock()))

    def _forget_token(self, reservation_id: int) -> None:
        for token, rid in self._tokens.items():
            if rid == reservation_id:
                del self._tokens[token]
                return

    def _arm(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        delay = max(0.0, waiter.reservation.start_time - self._clock())
        loop = asyncio.get_running_loop()
        waiter.timer = loop.call_later(delay, self._due, waiter.reservation.id)

    def _due(self, reservation_id: int) -> None:
        waiter = self._waiters.get(reservation_id)
        if waiter is None:
            return
        if self._clock() < waiter.reservation.start_time:  # timer granularity: not yet
            self._arm(waiter)
            return
        del self._waiters[reservation_id]
        self._forget_token(reservation_id)
        waiter.future.set(waiter.reservation)

    def _apply(self, replan: Replan) -> None:
        for reservation in replan.moved:
            waiter = self._waiters.get(reservation.id)
            if waiter is not None:
                waiter.reservation = reservation
                self._arm(waiter)
        for reservation, error in replan.failed:
            waiter = self._waiters.pop(reservation.id, None)
            if waiter is None:
                continue
            if waiter.timer is not None:
                waiter.timer.cancel()
            self._forget_token(reservation.id)
            waiter.future.set_exception((type(error), error, error.__traceback__))
