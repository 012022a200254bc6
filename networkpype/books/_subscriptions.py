"""The subscriptions of an order-book maintainer's books: subscribed again, in batches,
when one is lost (a shard given up, a topic lost in a rotation or refused on a replay, a
refusal, or silence on an open connection)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable

from networkpype.books._entry import BookEntry
from networkpype.books.settings import BookSettings
from networkpype.books.source import DiffSource

__all__ = ["Resubscriber"]

logger = logging.getLogger("networkpype.books.maintainer")

_BATCH_WINDOW = 0.05  # seconds to wait for more topics to put into the same request


class Resubscriber:
    """Subscribes books' topics again on ``ws_manager`` (a diff source): :meth:`request`
    one, :meth:`run` the loop that does it (its caller owns the task), :meth:`watch` the
    loop that finds silent ones. A refusal is retried with ``settings.retry_delay``;
    ``invalidate(entry, reason)`` tells the maintainer why the book is not valid meanwhile.
    ``clock``: monotonic seconds."""

    def __init__(
        self,
        ws_manager: DiffSource,
        settings: BookSettings,
        clock: Callable[[], float],
        invalidate: Callable[[BookEntry, str], None],
    ) -> None:
        self._ws = ws_manager
        self._settings = settings
        self._clock = clock
        self._invalidate = invalidate
        self._pending: dict[str, BookEntry] = {}
        self._wakeup = asyncio.Event()
        self.resubscriptions = 0

    def request(self, entry: BookEntry, delay: float = 0.0) -> None:
        """Subscribe ``entry``'s topic again, no sooner than ``delay`` seconds from now."""
        entry.healing = True
        entry.resubscribe_at = self._clock() + delay
        self._pending[entry.symbol] = entry
        self._wakeup.set()

    def cancel(self, entry: BookEntry) -> None:
        """Forget ``entry`` (a removed book)."""
        self._pending.pop(entry.symbol, None)

    async def run(self) -> None:
        """Subscribe the topics asked for, in batches, until cancelled: a topic the manager
        still holds is unsubscribed first, which ends its stream; a new stream is made
        (before the subscription) for every stream that ended."""
        while True:
            pending = self._pending
            now = self._clock()
            due = [e for e in pending.values() if e.resubscribe_at <= now]
            if not due:
                later = min((e.resubscribe_at for e in pending.values()), default=math.inf)
                self._wakeup.clear()
                try:
                    async with asyncio.timeout(None if later == math.inf else later - now):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
                await asyncio.sleep(_BATCH_WINDOW)
                continue
            for entry in due:
                del pending[entry.symbol]
            self.resubscriptions += len(due)
            rejected = await self._resubscribe(due)
            now = self._clock()
            for entry in due:
                if entry.removed:
                    continue
                reason = rejected.get(entry.topic)
                if reason is None:
                    entry.healing = False
                    entry.connected = True
                    entry.quiet_from = now
                    entry.refusals = 0
                    continue
                entry.refusals += 1
                delay = self._settings.retry_delay(entry.refusals)
                self._invalidate(entry, f"subscription refused: {reason}")
                logger.warning(
                    "book %s: subscription refused (%s); again in %.2f s",
                    entry.symbol,
                    reason,
                    delay,
                )
                self.request(entry, delay)

    async def _resubscribe(self, due: list[BookEntry]) -> dict[str, str]:
        """Subscribe ``due`` again; the refused topics with the reason."""
        ws = self._ws
        try:
            held = [e for e in due if ws.shard_of(e.topic) is not None]
            if held:
                await ws.unsubscribe_topics(e.topic for e in held)
            for entry in due:
                if entry in held or entry.stream_ended:
                    entry.set_stream(ws.stream(entry.topic))
            rejected = await ws.subscribe_topics(e.topic for e in due)
        except (ConnectionError, TimeoutError) as exc:  # the manager is down: later
            return {e.topic: f"{type(exc).__name__}: {exc}" for e in due}
        return dict(rejected)

    async def watch(self, entries: Callable[[], Iterable[BookEntry]]) -> None:
        """Until cancelled: resubscribe the books of ``entries()`` that are not valid and
        have had no data for ``settings.resubscribe_after`` seconds on an open connection."""
        quiet = self._settings.resubscribe_after
        while True:
            await asyncio.sleep(min(1.0, quiet / 4))
            now = self._clock()
            for entry in list(entries()):
                if (
                    not entry.sync.valid
                    and entry.connected
                    and not entry.healing
                    and now - max(entry.last_data, entry.quiet_from) > quiet
                ):
                    self._invalidate(entry, f"no data for {quiet:g} s: resubscribing")
                    self.request(entry)
