"""``AsyncThrottler``: the asyncio face of the rate-limit scheduler.

``async with throttler.execute_task(limit_id):`` returns when the task may start under its
limit and every linked one, and records the use. The decisions are made by the pure
:class:`~networkpype.limits.core.ThrottlerCore`; this module only turns its start times
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
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from pykka import ActorRef

from networkpype.limits.core import Reservation, ThrottlerCore, effective_capacity
from networkpype.limits.rate_limit import RateLimit
from networkpype.protocol.messages import Acquire, Release, SetLimits
from networkpype.throttler.context import AsyncRequestContext

if TYPE_CHECKING:
    from networkpype.actors.throttler import ThrottlerActor

__all__ = ["AsyncRequestContext", "AsyncThrottler"]

logger = logging.getLogger(__name__)
_tokens = itertools.count(1)


class AsyncThrottler:
    """Keeps tasks within their rate limits (see :mod:`networkpype.limits.rate_limit`).

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
        # The state lives in a throttler actor once one runs (it owns _core from then on);
        # _validator mirrors the settings so that validation and the getters stay synchronous.
        self._core = ThrottlerCore(
            rate_limits,
            safety_margin_pct=safety_margin_pct,
            limits_share_percentage=limits_share_percentage,
        )
        self._validator = ThrottlerCore(
            rate_limits,
            safety_margin_pct=safety_margin_pct,
            limits_share_percentage=limits_share_percentage,
        )
        self._actor: ActorRef[ThrottlerActor] | None = None
        self._actor_loop: asyncio.AbstractEventLoop | None = None

    @property
    def rate_limits(self) -> list[RateLimit]:
        """Copies of the declared limits (as given, not scaled by margin or share).

        Setting it replaces every limit at once: uses already recorded keep counting for each
        ``limit_id`` that survives; waiting tasks are rescheduled under the new limits, and a
        waiting task whose limit vanished (or no longer fits) fails with the
        ``ConfigurationError`` / ``UnknownRateLimitError`` that ``execute_task`` would raise.
        """
        return self._validator.rate_limits

    @rate_limits.setter
    def rate_limits(self, rate_limits: Sequence[RateLimit]) -> None:
        self._set_limits(rate_limits, self._validator.limits_share_percentage)

    @property
    def limits_share_percentage(self) -> Decimal:
        """The percent of every limit this throttler may use (``Decimal``, 100 by default).

        Setting it (``None`` = 100) rescales every limit at once, like setting
        :attr:`rate_limits`.
        """
        share = self._validator.limits_share_percentage
        return Decimal(100) if share is None else share

    @limits_share_percentage.setter
    def limits_share_percentage(self, limits_share_percentage: Decimal | None) -> None:
        self._set_limits(self._validator.rate_limits, limits_share_percentage)

    @property
    def safety_margin_pct(self) -> float:
        """The fraction of every limit kept unused, in ``[0, 1)``."""
        return self._validator.safety_margin_pct

    @property
    def retry_interval(self) -> float:
        """Kept for compatibility; waiting does not poll (see the class docstring)."""
        return self._retry_interval

    def copy(self) -> AsyncThrottler:
        """A new throttler with the same declared limits and settings and no recorded uses."""
        return AsyncThrottler(
            rate_limits=self._validator.rate_limits,
            retry_interval=self._retry_interval,
            safety_margin_pct=self._validator.safety_margin_pct,
            limits_share_percentage=self._validator.limits_share_percentage,
            clock=self._clock,
        )

    @classmethod
    def logger(cls) -> logging.Logger:
        """The module's logger (NetworkPype's classmethod; the same object every call)."""
        return logger

    def get_related_limits(
        self, limit_id: str
    ) -> tuple[RateLimit | None, list[tuple[RateLimit, int]]]:
        """``(the limit, [(limit, weight), ...])`` for a task on ``limit_id``: the limit itself
        with its weight first, then each linked limit with the linked weight. Copies, with
        ``limit`` as in effect for this throttler, as in NetworkPype: scaled by
        ``limits_share_percentage`` (floored, at least 1 when positive), not by the safety
        margin. ``(None, [])`` for an unknown id."""
        share = self._validator.limits_share_percentage
        limits = {
            limit.limit_id: dataclasses.replace(
                limit, limit=effective_capacity(limit.limit, 0.0, share)
            )
            for limit in self._validator.rate_limits
        }
        own = limits.get(limit_id)
        if own is None:
            return None, []
        related = [(own, own.weight)]
        related.extend(
            (limits[pair.limit_id], pair.weight)
            for pair in own.linked_limits
            if pair.limit_id in limits
        )
        return own, related

    def execute_task(self, limit_id: str) -> AsyncRequestContext:
        """An async context manager that enters when a task on ``limit_id`` may start.

        Raises at once, before any waiting: ``UnknownRateLimitError`` (a ``KeyError``) naming
        the id and the known ids, or ``ConfigurationError`` when the task's weight exceeds an
        effective capacity (it could never run). Entering yields the :class:`TaskLog` of the
        use (``timestamp`` on the throttler's clock).
        """
        rate_limit = self._validator.validate(limit_id)
        return AsyncRequestContext(self, limit_id, rate_limit)

    # -- the throttler actor ----------------------------------------------------------------

    def _actor_ref(self) -> ActorRef[ThrottlerActor]:
        """The actor owning the state, started on the running loop at first use.

        An actor whose loop has ended (a program that runs several ``asyncio.run``) cannot
        answer any more; nothing else touched the core meanwhile, so a new actor on the
        current loop takes it over.
        """
        # Imported here: the actor module imports this package's core (a cycle at import).
        from networkpype.actors.throttler import ThrottlerActor

        actor, loop = self._actor, self._actor_loop
        if actor is None or not actor.is_alive() or loop is None or loop.is_closed():
            self._actor_loop = asyncio.get_running_loop()
            self._actor = actor = ThrottlerActor.start(self._core, self._clock)
        return actor

    async def aclose(self) -> None:
        """Stop the actor holding the state (recorded uses are kept: a later task starts a
        new actor that takes them over). Call it when the throttler's owner shuts down."""
        actor, self._actor = self._actor, None
        if actor is not None:
            from networkpype.runtime import stop_actor

            await stop_actor(actor)

    def _within_capacity(self, limit_id: str) -> bool:
        # The core belongs to the actor, which runs on this same loop thread: reading it
        # between two of the actor's messages is safe, and records nothing.
        return self._core.within_capacity(limit_id, self._clock())

    def _flush(self) -> None:
        self._core.flush(self._clock())

    async def _acquire(self, limit_id: str) -> Reservation:
        actor = self._actor_ref()
        token = next(_tokens)
        try:
            future = await actor.ask(Acquire(limit_id=limit_id, token=token), block=False)
            reservation: Reservation = await future
        except asyncio.CancelledError:
            # Whether or not the actor has reserved yet, this goes after the Acquire.
            actor.tell(Release(token=token))
            raise
        return reservation

    def _set_limits(self, rate_limits: Sequence[RateLimit], share: Decimal | None) -> None:
        # Validate first (raises on bad limits), then hand the change to the state's owner.
        validator = ThrottlerCore(
            rate_limits,
            safety_margin_pct=self._validator.safety_margin_pct,
            limits_share_percentage=share,
        )
        self._validator = validator
        if self._actor is not None and self._actor.is_alive():
            self._actor.tell(
                SetLimits(rate_limits=list(rate_limits), limits_share_percentage=share)
            )
        else:
            self._core.set_limits(rate_limits, share, self._clock())
