"""The hand-off from a connection's reader task to the consumer: a bounded FIFO.

This is the hot path's only queue. It is not a pykka mailbox: the reader puts each decoded
frame straight in and the consumer takes it out, with no actor hop per frame, and a take
that finds items waiting does not suspend at all, so a burst read from one socket is drained
in one go. Single event loop, not thread-safe (sync hosts go through the loop thread).

When full, ``put()`` waits (the reader stops reading the socket, TCP pushes back, nothing is
lost). An exception ``fail()``-ed into the queue is raised to the consumer in its place
among the items, after everything put before it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from networkpype.protocol.errors import ConfigurationError, ConsumerOverflowError

__all__ = ["OVERFLOW_POLICIES", "DeliveryQueue", "QueueClosed"]

T = TypeVar("T")


class QueueClosed(Exception):
    """Raised by ``get()`` once the queue is closed and drained."""


class _Raise:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


OVERFLOW_POLICIES = ("block", "drop_oldest", "error")


class DeliveryQueue(Generic[T]):
    """Bounded FIFO between producer tasks and consumer tasks on one loop (normally one
    consumer; a second may wait while taking over from the first).

    ``maxsize`` is the number of items held before the ``overflow`` policy applies:
    ``"block"`` (``offer`` refuses, the producer awaits ``put``: nothing is lost),
    ``"drop_oldest"`` (the oldest item for which ``droppable`` is true makes room; counted in
    ``dropped``) or ``"error"`` (the consumer gets ``ConsumerOverflowError`` in place, and
    items that find the queue full are dropped and counted until it has room again).
    """

    __slots__ = (
        "_closed",
        "_droppable",
        "_errors",
        "_getter",
        "_items",
        "_maxsize",
        "_overflow",
        "_overflowed",
        "_putters",
        "dropped",
    )

    def __init__(
        self,
        maxsize: int,
        overflow: str = "block",
        droppable: Callable[[Any], bool] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ConfigurationError(f"max_queue must be at least 1, got {maxsize}")
        if overflow not in OVERFLOW_POLICIES:
            raise ConfigurationError(
                f"overflow={overflow!r}: use one of {', '.join(OVERFLOW_POLICIES)}"
            )
        self._overflow = overflow
        self._droppable = droppable or (lambda _item: True)
        self._overflowed = False
        self.dropped = 0
        self._items: deque[T | _Raise] = deque()
        self._maxsize = maxsize
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] | None = None  # made when first needed
        self._closed = False
        self._errors = 0  # queued _Raise markers: batches stop before the first

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        # A queue is an object, not a collection: `queue or default` must never replace an
        # empty queue (use len() for the count).
        return True

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @property
    def closed(self) -> bool:
        return self._closed

    def full(self) -> bool:
        return len(self._items) >= self._maxsize

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    @property
    def overflow(self) -> str:
        return self._overflow

    def offer(self, item: T) -> bool:
        """Append ``item`` if there is room and return True; when full, apply the overflow
        policy: False (nothing added) under ``"block"``, True otherwise."""
        items = self._items
        if len(items) >= self._maxsize:
            if self._overflow == "block":
                return False
            return self._overflow_item(item)
        if self._overflowed:
            self._overflowed = False
        items.append(item)
        if self._getter is not None:
            self._wake_getter()
        return True

    def _overflow_item(self, item: T) -> bool:
        items = self._items
        if self._overflow == "drop_oldest":
            for index, queued in enumerate(items):
                if type(queued) is not _Raise and self._droppable(queued):
                    del items[index]
                    self.dropped += 1
                    items.append(item)
                    return True
            items.append(item)  # nothing droppable (all control items): keep everything
            return True
        self.dropped += 1  # "error": this item is lost, and the consumer is told once
        if not self._overflowed:
            self._overflowed = True
            self.fail(
                ConsumerOverflowError(
                    f"the consumer fell {self._maxsize} messages behind (max_queue); messages "
                    "are dropped until it catches up: read faster, raise max_queue, or use "
                    "overflow='block'"
                )
            )
        return True

    def put_nowait(self, item: T) -> None:
        """Append ``item`` even past ``maxsize`` (for control items that must not wait)."""
        self._items.append(item)
        self._wake_getter()

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the queue is full."""
        while len(self._items) >= self._maxsize and not self._closed:
            waiter = asyncio.get_running_loop().create_future()
            if self._putters is None:
                self._putters = deque()
            self._putters.append(waiter)
            try:
                await waiter
            finally:
                if self._putters is not None and waiter in self._putters:
                    self._putters.remove(waiter)
        self._items.append(item)
        self._wake_getter()

    def fail(self, error: BaseException, *, coalesce: bool = False) -> None:
        """Queue ``error`` to be raised by ``get()`` after the items before it.

        ``coalesce``: skip it when the last queued item is already an error of its type.
        """
        items = self._items
        if (
            coalesce
            and items
            and type(items[-1]) is _Raise
            and type(items[-1].error) is type(error)
        ):
            return
        self._items.append(_Raise(error))
        self._errors += 1
        self._wake_getter()

    def close(self) -> None:
        """No more items will come: ``get()`` drains what is queued, then raises QueueClosed.
        Producers blocked in ``put()`` are released."""
        self._closed = True
        self._wake_getter()
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)

    def get_nowait(self) -> T:
        """Take the next item; raises ``asyncio.QueueEmpty`` if there is none yet."""
        items = self._items
        if not items:
            if self._closed:
                raise QueueClosed
            raise asyncio.QueueEmpty
        item = items.popleft()
        if self._putters and len(items) < self._maxsize:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
        if type(item) is _Raise:
            self._errors -= 1
            raise item.error
        return item  # type: ignore[return-value]

    def get_batch_nowait(self) -> deque[T]:
        """Take every item queued before the next error, in order, in one step.

        Raises ``asyncio.QueueEmpty`` when there is none, the queued error when it is first,
        ``QueueClosed`` when closed and drained.
        """
        items = self._items
        if not items:
            if self._closed:
                raise QueueClosed
            raise asyncio.QueueEmpty
        if type(items[0]) is _Raise:
            self.get_nowait()  # raises it
        if self._errors:
            batch: deque[T | _Raise] = deque()
            while items and type(items[0]) is not _Raise:
                batch.append(items.popleft())
        else:
            batch, self._items = items, deque()
        while self._putters:
            putter = self._putters.popleft()
            if not putter.done():
                putter.set_result(None)
        return batch  # type: ignore[return-value]

    async def _wait(self) -> None:
        """Wait until items arrive or the queue closes. Several consumers may wait at once
        (a router taking over from a direct reader); they share one wake-up future."""
        getter = self._getter
        if getter is None or getter.done():
            getter = self._getter = asyncio.get_running_loop().create_future()
        try:
            await getter
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # Another waiter was cancelled, and with it the shared future: look again.

    async def get_batch(self) -> deque[T]:
        """``get_batch_nowait``, waiting for the first item."""
        while not self._items:
            if self._closed:
                raise QueueClosed
            await self._wait()
        return self.get_batch_nowait()

    async def get(self) -> T:
        """Take the next item, waiting for one; raises queued errors and ``QueueClosed``."""
        while not self._items:
            if self._closed:
                raise QueueClosed
            await self._wait()
        return self.get_nowait()
