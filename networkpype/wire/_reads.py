"""The public path's batches (issue 15): one list per socket read, with ``receive()`` only.

On the public path the reader awaits aiohttp's ``receive()`` for every frame; one that
aiohttp has parsed already returns without suspending, so the loop's callbacks run only
when the reader waits for the next socket read. The reader appends each data frame to
``batch`` and schedules ``flush`` with ``loop.call_soon`` on the first: it runs when the
read's frames are all taken, and hands the list to the delivery queue once, stamped and
counted once.

Backpressure stays counted in messages: frames the delivery queue refuses wait in
``stalled``, in order, later batches behind them; the queue calls back when a consumer
makes room (``when_room``), and the reader, the next time it has a frame, stops reading
and ``put``s what is still stalled before anything else (``drain``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["PublicReads", "WhenRoom"]

WhenRoom = Callable[[Callable[[], None]], Callable[[], None]]
"""The delivery queue's ``when_room(callback)``: calls back once when a consumer makes room;
returns a function that withdraws the request."""


class PublicReads:
    """One reader's batch and stalled frames on the public path (see the module docstring).
    ``account(messages, bytes)`` stamps and counts a batch; ``offer_many(batch)`` returns
    how many frames the delivery queue took."""

    __slots__ = (
        "_account",
        "_loop",
        "_offer_many",
        "_when_room",
        "_withdraw",
        "batch",
        "closed",
        "draining",
        "scheduled",
        "seen",
        "stalled",
    )

    def __init__(
        self,
        account: Callable[[int, int], None],
        offer_many: Callable[[list[Any]], int],
        when_room: WhenRoom,
    ) -> None:
        self._account = account
        self._offer_many = offer_many
        self._when_room = when_room
        self._withdraw: Callable[[], None] | None = None
        self._loop = asyncio.get_running_loop()
        self.batch: list[Any] = []
        self.seen = False  # a frame was intercepted since the last flush (to be stamped)
        self.scheduled = False
        self.stalled: list[Any] = []  # refused by a full queue, oldest first
        self.closed = False
        self.draining = False  # the reader is putting the stalled frames itself

    def schedule(self) -> None:
        """The reader took the first data frame of a read: ``flush`` once it waits."""
        self.scheduled = True
        self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand the batch over: stamped, counted, offered; what is refused waits in
        ``stalled`` (behind what already waits there)."""
        self.scheduled = False
        batch = self.batch
        if self.closed or not (batch or self.seen):
            return
        count = len(batch)
        self._account(count, sum(map(len, batch)))  # frames have a len(): their payload's
        self.seen = False
        if not count:
            return  # every frame was intercepted: stamped, not counted
        stalled = self.stalled
        if stalled:
            stalled.extend(batch)
        else:
            taken = self._offer_many(batch)
            if taken < count:
                stalled.extend(batch[taken:])
                self._withdraw = self._when_room(self._room)
        batch.clear()

    def _room(self) -> None:
        """A consumer made room: offer what is stalled; wait again for what is refused."""
        self._withdraw = None
        stalled = self.stalled
        if self.closed or self.draining or not stalled:
            return
        taken = self._offer_many(stalled)
        del stalled[:taken]
        if stalled:
            self._withdraw = self._when_room(self._room)

    async def drain(self, put: Callable[[Any], Awaitable[None]]) -> None:
        """The reader's part, before it reads on (or handles anything but a data frame):
        the batch handed over, then every stalled frame ``put`` in order, waiting for room.
        A frame leaves ``stalled`` only once put."""
        if self.batch or self.seen:
            self.flush()
        stalled = self.stalled
        if not stalled:
            return
        if self._withdraw is not None:
            self._withdraw()  # the reader puts them now, in turn with other producers
            self._withdraw = None
        done = 0
        self.draining = True
        try:
            while done < len(stalled):
                await put(stalled[done])
                done += 1
        finally:
            self.draining = False
            del stalled[:done]

    def close(self) -> None:
        """The reader ends: no callback delivers anything from now on."""
        self.closed = True
        if self._withdraw is not None:
            self._withdraw()
            self._withdraw = None
