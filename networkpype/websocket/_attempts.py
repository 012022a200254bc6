"""The sharded manager's gate in front of every connection attempt: the attempt budget
(:class:`~networkpype.websocket._budget.AttemptBudget`) on the event loop, with priorities.
Part of :mod:`networkpype.websocket.sharded`.

Every attempt of every shard (a first open, a redial by the supervisor, a rotation's
replacement) passes :meth:`AttemptGate.attempt`, an async context manager around the opening
handshake: it waits for a place, holds it until the handshake's outcome, and then for the
budget's ``hold``. Waiting attempts go by priority, then in arrival order: a redial of a dark
connection (``REDIAL``) before a rotation of a healthy one (``ROTATION``), and a rotation
only while ``reserve`` places stay free for redials (the caller's reserve may grow with
:meth:`recent_redials`). A rotation whose reason has gone while
it waited (its connection was redialled meanwhile) is cancelled: ``cancelled()`` returns why,
and the attempt raises ``ConnectAbortedError``. A 429 from the venue pauses every attempt
until its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from networkpype.protocol.errors import ConnectAbortedError, HandshakeError
from networkpype.websocket._budget import AttemptBudget

__all__ = ["REDIAL", "ROTATION", "AttemptGate"]

logger = logging.getLogger("networkpype.websocket.sharded")

REDIAL = 0
"""Priority of an attempt that brings topics back (a redial, a new shard)."""
ROTATION = 1
"""Priority of a rotation's replacement (its topics are streaming meanwhile)."""

_RECHECK = 0.5  # seconds: a waiting rotation looks again whether it is still wanted
_RATE_LIMITED = frozenset({418, 429})


class AttemptGate:
    """Connection attempts through one :class:`AttemptBudget` (None: no limit, priorities
    and cancellation only). ``clock``: monotonic seconds. Use from one event loop."""

    def __init__(
        self, budget: AttemptBudget | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budget = budget
        self._clock = clock
        self._waiting: list[tuple[int, int]] = []  # (priority, arrival), sorted
        self._redials: deque[float] = deque()  # when REDIAL attempts started, oldest first
        self._arrivals = itertools.count()
        self._changed: asyncio.Event | None = None

    def recent_redials(self) -> int:
        """``REDIAL`` attempts started within the budget's window (0 without a budget)."""
        if self.budget is None:
            return 0
        horizon = self._clock() - self.budget.window
        redials = self._redials
        while redials and redials[0] < horizon:
            redials.popleft()
        return len(redials)

    def waiting(self, priority: int = REDIAL) -> int:
        """Attempts of ``priority`` waiting for a place now (those of a redial go before a
        new one of the same priority)."""
        return sum(1 for p, _ in self._waiting if p == priority)

    def room(self, reserve: int = 0) -> bool:
        """True when an attempt that leaves ``reserve`` places free could start now, with
        nobody waiting."""
        if self._waiting:
            return False
        return self.budget is None or self.budget.free(self._clock()) > reserve

    async def wait_for_room(self, reserve: int, within: float) -> bool:
        """Wait up to ``within`` seconds for :meth:`room`; returns it."""
        deadline = self._clock() + within
        while not self.room(reserve):
            left = deadline - self._clock()
            if left <= 0:
                return False
            await self._wait(min(left, self._next_change()))
        return True

    @contextlib.asynccontextmanager
    async def attempt(
        self,
        priority: int = REDIAL,
        reserve: int = 0,
        cancelled: Callable[[], str | None] | None = None,
    ) -> AsyncIterator[None]:
        """Wait for a place (see the module docstring), hold it for the body (the
        handshake), and for the budget's ``hold`` after it. ``ConnectAbortedError`` when
        ``cancelled()`` gives a reason meanwhile."""
        key = (priority, next(self._arrivals))
        bisect.insort(self._waiting, key)
        try:
            while True:
                why = cancelled() if cancelled is not None else None
                if why is not None:
                    raise ConnectAbortedError(f"attempt cancelled: {why}")
                now = self._clock()
                budget = self.budget
                if self._waiting[0] == key and (budget is None or budget.free(now) > reserve):
                    break
                wait = self._next_change()
                if cancelled is not None:
                    wait = min(wait, _RECHECK)
                await self._wait(wait)
        finally:
            self._waiting.remove(key)
            self._notify()
        budget = self.budget
        token = budget.start(self._clock()) if budget is not None else None
        if budget is not None and priority == REDIAL:
            self._redials.append(self._clock())
        try:
            yield
        except HandshakeError as exc:
            if budget is not None and exc.status in _RATE_LIMITED:
                budget.refused(self._clock(), exc.retry_after)
                logger.info(
                    "venue answered %d to a connection attempt: every attempt waits %s",
                    exc.status,
                    f"{exc.retry_after:g} s" if exc.retry_after is not None else "a moment",
                )
            raise
        finally:
            if budget is not None and token is not None:
                budget.finish(token, self._clock())
            self._notify()

    def _next_change(self) -> float:
        """Seconds until the budget may have room without a notification."""
        if self.budget is None:
            return math.inf
        now = self._clock()
        return max(0.0, self.budget.next_change(now) - now)

    async def _wait(self, seconds: float) -> None:
        """Until a notification, or ``seconds`` (``inf``: no limit)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        changed = self._changed
        if math.isinf(seconds):
            await changed.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), seconds)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()
