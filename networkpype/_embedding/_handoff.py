"""``_HandOff``: the bounded hand-off from the loop's consumer task to the host's threads.

Part of the blocking facades; import the public names from :mod:`networkpype.embedding`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Any

from networkpype.actors.delivery import Raise
from networkpype.protocol.errors import ConfigurationError
from networkpype.runtime import wake

__all__: list[str] = []


class _HandOff:
    """Bounded FIFO from one producer task on ``loop`` to any number of reader threads.

    Not a ``queue.Queue``: the producer must wait for room without blocking its loop (a
    reader that makes room wakes it through the loop), and closing must wake every reader.
    An error is an item too: raised once, in its place, to the one reader that reaches it;
    nothing sticks, so the next read goes on with what follows.
    """

    def __init__(self, maxsize: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if maxsize < 1:
            raise ConfigurationError(f"max_pending must be at least 1, got {maxsize}")
        self._maxsize = maxsize
        self._loop = loop  # set by bind() before the first put()
        self._items: deque[Any] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._room: asyncio.Future[None] | None = None  # the producer waiting for room
        self._closed = False
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._items)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the producer's loop (once, before the first ``put``)."""
        self._loop = loop

    # loop side

    async def put(self, item: Any) -> None:
        """Append ``item``, waiting (on the loop) while full. Dropped once closed."""
        while True:
            with self._ready:
                if self._closed:
                    return
                if len(self._items) < self._maxsize:
                    self._items.append(item)
                    self._ready.notify()
                    return
                room = self._room = asyncio.get_running_loop().create_future()
            try:
                await room
            finally:
                self._room = None

    async def put_error(self, error: BaseException) -> None:
        """Queue ``error`` in order, as ``put()`` does an item: raised once, to the reader
        that reaches it. Dropped once closed."""
        await self.put(Raise(error))

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: readers get what is queued (then ``error``, raised once, when
        given and the stream was open), then None. Idempotent."""
        with self._ready:
            if error is not None and not self._closed:
                self._items.append(Raise(error))  # past the bound: the last item, once
            self._close_locked()

    def _close_locked(self) -> None:
        self._closed = True
        self._ready.notify_all()
        room, self._room = self._room, None
        if room is not None:
            self._wake_producer(room)

    def _wake_producer(self, room: asyncio.Future[None]) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to wake
            self._loop.call_soon_threadsafe(wake, room)

    # reader side (any thread)

    def get(self, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._items:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no message within {timeout} s")
                self._ready.wait(remaining)
            item = self._items.popleft()
            self.delivered += 1
            room, self._room = self._room, None
        if room is not None:
            self._wake_producer(room)
        if type(item) is Raise:
            raise item.error
        return item
