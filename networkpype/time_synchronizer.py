"""Server time, estimated from the local clock and measured offsets.

A venue that signs requests with a timestamp rejects one too far from its own clock. The
:class:`TimeSynchronizer` keeps the last few measured offsets (server minus local, in
milliseconds) and answers :meth:`~TimeSynchronizer.time` with the local Unix time shifted by
their median, which one slow round trip cannot drag away.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import statistics
import time
from collections import deque
from collections.abc import Awaitable

from networkpype.protocol.errors import ConfigurationError

__all__ = ["TimeSynchronizer"]

logger = logging.getLogger(__name__)


def _discard(awaitable: Awaitable[float]) -> None:
    """Close a coroutine that will not be awaited, so Python does not warn that it never was.

    Other awaitables (tasks, futures) are already running on their own and are left alone.
    """
    if inspect.iscoroutine(awaitable):
        awaitable.close()


class TimeSynchronizer:
    """Server time as local Unix time plus the median of recent offset samples.

    Keeps at most ``max_samples`` (an ``int >= 1``; otherwise ``ConfigurationError``) offsets,
    dropping the oldest. Offsets are in milliseconds, positive when the server is ahead.
    """

    def __init__(self, max_samples: int = 5) -> None:
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ConfigurationError(f"max_samples must be an int >= 1, got {max_samples!r}")
        self._samples_ms: deque[float] = deque(maxlen=max_samples)
        self._init_lock = asyncio.Lock()

    @classmethod
    def logger(cls) -> logging.Logger:
        """The module's logger (NetworkPype's classmethod; the same object every call)."""
        return logger

    @property
    def time_offset_ms(self) -> float:
        """The median of the kept samples, in milliseconds; 0.0 when there are none."""
        if not self._samples_ms:
            return 0.0
        return float(statistics.median(self._samples_ms))

    @property
    def is_initialized(self) -> bool:
        """True once at least one offset sample has been recorded."""
        return bool(self._samples_ms)

    def time(self) -> float:
        """The estimated server time: Unix seconds (``time.time()`` plus the median offset)."""
        return time.time() + self.time_offset_ms * 1e-3

    def add_time_offset_ms_sample(self, offset: float) -> None:
        """Record one offset (server minus local time, milliseconds); the oldest may drop."""
        self._samples_ms.append(float(offset))

    def clear_time_offset_ms_samples(self) -> None:
        """Forget every sample: :meth:`time` falls back to local time until the next one."""
        self._samples_ms.clear()

    async def update_server_time_offset_with_time_provider(
        self, time_provider: Awaitable[float]
    ) -> None:
        """Await ``time_provider`` (the server's Unix time in milliseconds) and record one
        offset against the local time at the midpoint of the round trip.

        The round trip is timed on the monotonic clock, so a wall-clock step during the call
        does not skew the midpoint. Whatever the provider raises propagates and records nothing.
        """
        wall_before = time.time()
        mono_before = time.monotonic()
        server_ms = float(await time_provider)
        half_round_trip = (time.monotonic() - mono_before) / 2
        local_midpoint_ms = (wall_before + half_round_trip) * 1e3
        self.add_time_offset_ms_sample(server_ms - local_midpoint_ms)

    async def update_server_time_if_not_initialized(self, time_provider: Awaitable[float]) -> None:
        """Measure an offset with ``time_provider`` only if there is no sample yet.

        Concurrent callers are serialised by a lock, so however many race, the provider is
        awaited once; the others find the sample recorded and close their own coroutine
        unawaited (also when cancelled while waiting for the lock). If the winner's provider
        fails, its error propagates and the next caller in line tries its own provider.
        """
        awaited = False
        try:
            async with self._init_lock:
                if not self._samples_ms:
                    awaited = True
                    await self.update_server_time_offset_with_time_provider(time_provider)
        finally:
            if not awaited:
                _discard(time_provider)
