"""The hand-off from a connection's reader task to the consumer: a bounded FIFO.

This is the hot path's only queue. It is not a pykka mailbox: the reader puts each decoded
frame straight in and the consumer takes it out, with no actor hop per frame, and a take
that finds items waiting does not suspend at all, so a burst read from one socket is drained
in one go. Single event loop, not thread-safe (sync hosts go through the loop thread).

When full, ``put()`` waits (the reader stops reading the socket, TCP pushes back, nothing is
lost). An exception ``fail()``-ed into the queue is raised to the consumer in its place
among the items, after everything put before it.

An item leaves the queue only when a consumer takes it (``take_nowait``/``get``, or a batch
consumer popping ``items`` and calling ``taken()`` before it hands the batch on, without an
await between), so a consumer that stops (``break``, an error, a cancelled task) leaves every
item it was not given where the next consumer finds it. One consumer at a time: a second task
that waits while another is waiting gets ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from networkpype.protocol.errors import ConsumerOverflowError
from networkpype.protocol.options import OVERFLOW_POLICIES, Overflow, check_queue

__all__ = ["DROPPED", "OVERFLOW_POLICIES", "DeliveryQueue", "Dropped", "QueueClosed", "Raise"]

T = TypeVar("T")


class QueueClosed(Exception):
    """Raised by ``get()`` once the queue is closed and drained."""


class Raise:
    """A queued error: raised to the consumer in place of an item."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Dropped:
    """Queued once when an ``overflow`` policy first drops items since the consumer last
    heard of it: the consumer reports ``DeliveryQueue.unreported_drops()`` where it finds it,
    in order with the items (a later drop adds to the same count, not another marker)."""

    __slots__ = ()


DROPPED = Dropped()


class _NoItems(deque[Any]):
    """The ``items`` of a queue whose consumer went to wait with nothing queued: one empty
    deque shared by every such queue, which takes nothing (an empty deque holds a block of
    about 760 B, and most of a bot's connections are idle most of the time). A queue gets
    a deque of its own again with its next item."""

    __slots__ = ()

    def _refuse(self, *_args: Any) -> None:
        raise RuntimeError("an item was added to the shared empty deque of idle queues")

    append = appendleft = extend = extendleft = insert = _refuse


_NO_ITEMS = _NoItems()


class _Ready:
    """``DeliveryQueue.wait()``'s answer when items are queued: awaited, it returns at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator that ends at once


_READY = _Ready()


class DeliveryQueue(Generic[T]):
    """Bounded FIFO between producer tasks and one consumer task on one loop.

    ``maxsize`` is the number of items held before the ``overflow`` policy applies:
    ``"block"`` (``offer`` refuses, the producer awaits ``put``: nothing is lost),
    ``"drop_oldest"`` (the oldest item for which ``droppable`` is true makes room; counted in
    ``dropped``) or ``"error"`` (the consumer gets ``ConsumerOverflowError`` in place, and
    items that find the queue full are dropped and counted until it has room again). Either
    way a ``DROPPED`` marker tells the consumer, in order, that items were dropped.

    The consumer's side: ``items`` (the deque itself, for a consumer loop that takes the head
    with ``take_nowait``), ``wait()`` for more, ``get()``/``get_nowait()`` for one at a time.
    """

    __slots__ = (
        "_closed",
        "_droppable",
        "_getter",
        "_marked",
        "_maxsize",
        "_overflow",
        "_overflowed",
        "_reported",
        "alert",
        "dropped",
        "items",
        "moved",
        "putters",
        "taking",
    )

    def __init__(
        self,
        maxsize: int,
        overflow: Overflow = "block",
        droppable: Callable[[Any], bool] | None = None,
    ) -> None:
        check_queue(maxsize, overflow)
        self._overflow = overflow
        self._droppable = droppable or (lambda _item: True)
        self._overflowed = False
        self.dropped = 0
        self._reported = 0  # drops the consumer has been told of
        self._marked = False  # a DROPPED marker is queued and not yet taken
        # The items, oldest first. Replaced only while empty with no item taken and not
        # handed out (``taking``): by the shared ``_NO_ITEMS`` when the consumer waits, by
        # a deque of its own at the next item (``_items()``). A consumer loop holding the
        # old one finds it empty and looks at ``items`` again.
        self.items: deque[Any] = _NO_ITEMS
        self._maxsize = maxsize
        self._getter: asyncio.Future[None] | None = None
        # Producers waiting for room (made when first needed): a consumer loop that pops
        # ``items`` itself calls ``taken()`` when there are any.
        self.putters: deque[asyncio.Future[None]] | None = None
        self._closed = False
        # True while a consumer holds an item it took but has not handed out yet (awaiting
        # post-processors): another consumer taking meanwhile would reorder the stream.
        self.taking = False
        # Set by ``hand_over()``: a consumer loop draining ``items`` looks again at where it
        # should read before it takes the next item.
        self.moved = False
        # True whenever a consumer loop must look at ``taking``, ``putters`` or ``moved``
        # before it takes the next item: set with each of them, cleared by the loop that
        # found none of them set (one test per item on the hot path instead of three).
        self.alert = False

    def __len__(self) -> int:
        return len(self.items)

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
        return len(self.items) >= self._maxsize

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    @property
    def overflow(self) -> Overflow:
        return self._overflow

    def _items(self) -> deque[Any]:
        """``items``, to append to: a deque of its own again after an idle spell."""
        items = self.items
        if items is _NO_ITEMS:
            items = self.items = deque()
        return items

    def offer(self, item: T) -> bool:
        """Append ``item`` if there is room and return True; when full, apply the overflow
        policy: False (nothing added) under ``"block"``, True otherwise."""
        items = self.items
        if items is _NO_ITEMS:
            items = self.items = deque()
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

    def offer_many(self, batch: list[T]) -> int:
        """Append the items of ``batch`` in order as ``offer`` would, one by one, and return
        how many were taken: all of them, unless the policy is ``"block"`` and the queue
        filled (the producer then awaits ``put`` for each of the rest). Room is counted in
        items, as for ``offer``; a batch that fits costs one ``deque.extend``."""
        items = self.items
        if items is _NO_ITEMS:
            items = self.items = deque()
        if len(items) + len(batch) > self._maxsize:
            for taken, item in enumerate(batch):
                if not self.offer(item):
                    return taken
            return len(batch)
        if self._overflowed:
            self._overflowed = False
        items.extend(batch)
        if self._getter is not None:
            self._wake_getter()
        return len(batch)

    def when_room(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` once, from the loop, when a consumer makes room (as a producer
        waiting in ``put()`` would be woken, in turn with them); returns a function that
        withdraws the request (the callback then never runs)."""
        waiter = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(lambda done: None if done.cancelled() else callback())
        if self.putters is None:
            self.putters = deque()
        self.putters.append(waiter)
        self.alert = True

        def withdraw() -> None:
            if self.putters is not None and waiter in self.putters:
                self.putters.remove(waiter)
            waiter.cancel()

        return withdraw

    def _overflow_item(self, item: T) -> bool:
        items = self._items()
        if self._overflow == "drop_oldest":
            for index, queued in enumerate(items):
                if type(queued) is not Raise and queued is not DROPPED and self._droppable(queued):
                    del items[index]
                    self.dropped += 1
                    items.append(item)
                    self._mark_dropped()
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
        self._mark_dropped()
        return True

    def _mark_dropped(self) -> None:
        if not self._marked:
            self._marked = True
            self._items().append(DROPPED)

    def unreported_drops(self) -> int:
        """For the consumer that took the ``DROPPED`` marker: the items dropped since the last
        marker it took (and now reported)."""
        count, self._reported, self._marked = self.dropped - self._reported, self.dropped, False
        return count

    def put_nowait(self, item: T) -> None:
        """Append ``item`` even past ``maxsize`` (for control items that must not wait)."""
        self._items().append(item)
        self._wake_getter()

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the queue is full."""
        while len(self.items) >= self._maxsize and not self._closed:
            waiter = asyncio.get_running_loop().create_future()
            if self.putters is None:
                self.putters = deque()
            self.putters.append(waiter)
            self.alert = True
            try:
                await waiter
            finally:
                if self.putters is not None and waiter in self.putters:
                    self.putters.remove(waiter)
        self._items().append(item)
        self._wake_getter()

    def fail(self, error: BaseException, *, coalesce: bool = False) -> None:
        """Queue ``error`` to be raised by ``get()`` after the items before it.

        ``coalesce``: skip it when the last queued item is already an error of its type.
        """
        items = self._items()
        if (
            coalesce
            and items
            and type(items[-1]) is Raise
            and type(items[-1].error) is type(error)
        ):
            return
        items.append(Raise(error))
        self._wake_getter()

    def close(self) -> None:
        """No more items will come: ``get()`` drains what is queued, then raises QueueClosed.
        Producers blocked in ``put()`` are released."""
        self._closed = True
        self._wake_getter()
        while self.putters:
            putter = self.putters.popleft()
            if not putter.done():
                putter.set_result(None)

    def take_nowait(self) -> Any:
        """Remove and return the head of ``items`` as it is (a ``Raise`` or ``DROPPED``
        marker included), releasing a producer waiting for room. ``IndexError`` when empty."""
        item = self.items.popleft()
        if self.putters:
            self._release_putter()
        return item

    def taken(self) -> None:
        """A consumer popped items from ``items`` itself (a batch take): release a producer
        waiting for room, as ``take_nowait`` does."""
        if self.putters:
            self._release_putter()

    def _release_putter(self) -> None:
        putters = self.putters
        while putters and len(self.items) < self._maxsize:
            putter = putters.popleft()
            if not putter.done():
                putter.set_result(None)
                return

    def get_nowait(self) -> T:
        """Take the next item; raises ``asyncio.QueueEmpty`` if there is none yet, the queued
        error in its place, ``QueueClosed`` once closed and drained. Skips ``DROPPED``."""
        while True:
            if not self.items:
                if self._closed:
                    raise QueueClosed
                raise asyncio.QueueEmpty
            item = self.take_nowait()
            if type(item) is Raise:
                raise item.error
            if item is DROPPED:
                self.unreported_drops()
                continue
            return item  # type: ignore[no-any-return]

    def wait(self) -> Awaitable[None]:
        """What to await until items are queued, or until the next wake-up (items put, the
        queue closed, ``hand_over``): the caller looks again. (An awaitable, not a coroutine:
        a consumer waiting on an idle connection holds no frame of it.)

        Raises ``QueueClosed`` when closed and drained, and ``RuntimeError`` when another
        consumer is waiting already: two consumers would split the stream between them.
        """
        if self.items:
            return _READY
        if self._closed:
            raise QueueClosed
        getter = self._getter
        if getter is not None and not getter.done():  # a cancelled waiter's is done
            raise RuntimeError(
                "another task is already waiting for this stream's messages: read a "
                "manager (or stream) from one task at a time"
            )
        getter = self._getter = asyncio.get_running_loop().create_future()
        if not self.taking:  # nothing taken is held: the emptied deque may go
            self.items = _NO_ITEMS
        return getter

    def hand_over(self) -> None:
        """Wake a consumer waiting here, and make one draining ``items`` stop at the next
        item (``moved``), so it looks again at where it should read (a sharded manager's
        router takes this queue over)."""
        self.moved = True
        self.alert = True
        self._wake_getter()

    async def get(self) -> T:
        """Take the next item, waiting for one; raises queued errors and ``QueueClosed``."""
        while True:
            await self.wait()
            try:
                return self.get_nowait()
            except asyncio.QueueEmpty:
                continue  # only a DROPPED marker was there
