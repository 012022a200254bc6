"""One maintained book's bookkeeping inside an ``OrderBookMaintainer``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from networkpype.books.sync import BookSync
from networkpype.books.views import BookState, LiveBook

__all__ = ["BookEntry"]


class BookEntry:
    """A book, its topic, its current stream and the state of its subscription.

    The stream is handed from the task that makes it (``set_stream``) to the book's follower
    (``next_stream``), which waits until a stream newer than the one it consumed exists.
    Times are monotonic seconds.
    """

    __slots__ = (
        "_consumed",
        "_generation",
        "_new_stream",
        "_stream",
        "connected",
        "handle",
        "healing",
        "last_data",
        "quiet_from",
        "refusals",
        "removed",
        "resubscribe_at",
        "snapshot_failures",
        "stream_ended",
        "sync",
        "task",
        "topic",
    )

    def __init__(self, sync: BookSync, topic: str, handle: LiveBook, now: float) -> None:
        self.sync = sync
        self.topic = topic
        self.handle = handle
        self.task: asyncio.Task[None] | None = None
        self._stream: AsyncIterator[Any] | None = None
        self._generation = 0
        self._consumed = 0
        self._new_stream = asyncio.Event()
        self.stream_ended = False  # the follower's stream has ended; a new one is needed
        self.connected = True  # False from a Disconnected to its Reconnected
        self.healing = False  # a resubscription is asked for or under way
        self.last_data = now
        self.quiet_from = now  # silence counts from here (subscribed, reconnected)
        self.resubscribe_at = now
        self.refusals = 0  # subscriptions refused in a row
        self.snapshot_failures = 0  # snapshots failed or too old in a row
        self.removed = False

    @property
    def symbol(self) -> str:
        return self.sync.symbol

    def set_stream(self, stream: AsyncIterator[Any]) -> None:
        """The stream the follower reads next."""
        self._stream = stream
        self._generation += 1
        self._new_stream.set()

    async def next_stream(self) -> AsyncIterator[Any]:
        """The newest stream, once there is one the follower has not read yet."""
        while self._generation == self._consumed or self._stream is None:
            self._new_stream.clear()
            await self._new_stream.wait()
        self._consumed = self._generation
        self.stream_ended = False
        return self._stream

    def state(self, now: float, shard: str | None) -> BookState:
        """A frozen snapshot for statistics."""
        sync, handle = self.sync, self.handle
        return BookState(
            symbol=self.symbol,
            topic=self.topic,
            status=handle.status.value,
            update_id=sync.book.update_id,
            levels=len(sync.book),
            reason=handle.reason,
            invalid_for=handle.invalid_for,
            breaks=sync.breaks,
            resyncs=sync.resyncs,
            stale_snapshots=sync.stale_snapshots,
            buffered=sync.buffered,
            shard=shard,
        )
