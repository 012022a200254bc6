"""The snapshot queue of an order-book maintainer: which book fetches next, and when.

Books that need a snapshot queue here, each once, in the order they asked (or after a delay
of their own: a snapshot that was too old is fetched again a little later). A fixed number
of workers fetch them, each fetch through the ``RESTManager`` and so through the shared
throttler, which spaces them within the venue's weights: a thousand books broken at once
become a steady stream of snapshot requests, never a burst. A venue that answers 429/418
pauses every worker until its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable

__all__ = ["SnapshotQueue"]


class SnapshotQueue:
    """Books (by symbol) waiting for a snapshot, served by ``concurrency`` workers that call
    ``fetch(symbol)``, which returns the delay before the symbol should be fetched again
    (a failure, a snapshot too old), or None. ``clock`` is monotonic seconds. :meth:`run`
    runs the workers until cancelled; its caller owns the task."""

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[float | None]],
        concurrency: int,
        clock: Callable[[], float],
    ) -> None:
        self._fetch = fetch
        self._concurrency = concurrency
        self._clock = clock
        self._heap: list[tuple[float, int, str]] = []
        self._queued: dict[str, float] = {}  # symbol -> its not-before time
        self._in_flight: set[str] = set()
        self._order = itertools.count()
        self._paused_until = 0.0
        self._wakeup = asyncio.Event()
        self.requested = 0  # requests queued (a symbol queued again counts again)

    def __len__(self) -> int:
        """Books waiting (not those being fetched)."""
        return len(self._queued)

    @property
    def in_flight(self) -> int:
        """Snapshots being fetched now."""
        return len(self._in_flight)

    def request(self, symbol: str, delay: float = 0.0) -> None:
        """Queue ``symbol`` to be fetched no sooner than ``delay`` seconds from now. A
        symbol already queued keeps the earlier of its times; one being fetched is not
        queued (its fetch decides whether it needs another)."""
        if symbol in self._in_flight:
            return
        when = self._clock() + delay
        queued = self._queued.get(symbol)
        if queued is not None and queued <= when:
            return
        self._queued[symbol] = when
        heapq.heappush(self._heap, (when, next(self._order), symbol))
        self.requested += 1
        self._wakeup.set()

    def cancel(self, symbol: str) -> None:
        """Take ``symbol`` out of the queue (a removed book)."""
        self._queued.pop(symbol, None)

    def pause_for(self, seconds: float) -> None:
        """Start no fetch for ``seconds`` (the venue asked: HTTP 429 with ``Retry-After``)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as workers:
            for i in range(self._concurrency):
                workers.create_task(self._work(), name=f"networkpype-books-snapshots-{i}")

    async def _work(self) -> None:
        while True:
            symbol = await self._next()
            self._in_flight.add(symbol)
            try:
                again = await self._fetch(symbol)
            finally:
                self._in_flight.discard(symbol)
            if again is not None:
                self.request(symbol, again)

    async def _next(self) -> str:
        heap, queued = self._heap, self._queued
        while True:
            while heap and queued.get(heap[0][2]) != heap[0][0]:
                heapq.heappop(heap)  # cancelled, or queued again for an earlier time
            timeout: float | None = None
            if heap:
                now = self._clock()
                start = max(heap[0][0], self._paused_until)
                if start <= now:
                    _, _, symbol = heapq.heappop(heap)
                    del queued[symbol]
                    return symbol
                timeout = start - now
            self._wakeup.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
