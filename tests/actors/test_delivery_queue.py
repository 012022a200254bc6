"""DeliveryQueue's idle spells (issue 12, item 7): a queue whose consumer waits with nothing
queued gives its emptied deque up (about 760 B) for one shared empty deque, and gets a deque
of its own back with its next item, with the stream's order and the consumer's data kept."""

from __future__ import annotations

import asyncio

import pytest

from networkpype.actors.delivery import DeliveryQueue
from tests.timing import WAIT, wait_until


async def _next(queue: DeliveryQueue[int]) -> int:
    return await asyncio.wait_for(queue.get(), WAIT)


async def test_idle_queues_share_one_empty_deque_and_keep_their_order() -> None:
    first: DeliveryQueue[int] = DeliveryQueue(10)
    second: DeliveryQueue[int] = DeliveryQueue(10)
    for n in range(3):
        first.offer(n)
    assert [await _next(first) for _ in range(3)] == [0, 1, 2]

    waiting = [asyncio.create_task(_next(q)) for q in (first, second)]
    # Both consumers wait: neither queue holds a deque of its own.
    await wait_until(lambda: first.items is second.items, "both queues give their deque up")
    assert len(first.items) == 0

    first.offer_many([3, 4])
    second.put_nowait(40)
    assert first.items is not second.items
    assert await asyncio.wait_for(waiting[0], WAIT) == 3
    assert await asyncio.wait_for(waiting[1], WAIT) == 40
    assert await _next(first) == 4
    assert len(first) == 0 and not first.full()


async def test_the_shared_empty_deque_refuses_items_loudly() -> None:
    queue: DeliveryQueue[int] = DeliveryQueue(10)  # a new queue holds no deque of its own yet
    assert queue.items is DeliveryQueue(10).items
    with pytest.raises(RuntimeError, match="shared empty deque"):
        queue.items.append(1)  # only a bug would do this: the queue itself never does
    waiting = asyncio.create_task(_next(queue))
    queue.offer(1)
    assert await asyncio.wait_for(waiting, WAIT) == 1


async def test_an_item_taken_and_not_handed_out_keeps_its_deque() -> None:
    # A consumer loop pops the head and awaits post-processors (``taking``); a stream that
    # takes over waits meanwhile. If the first consumer is cancelled, it puts the item back
    # into the deque it popped from, which must still be the queue's.
    queue: DeliveryQueue[int] = DeliveryQueue(10)
    queue.offer(7)
    items = queue.items
    held = items.popleft()
    queue.taking = True
    waiter = queue.wait()
    assert queue.items is items  # not given up while an item is held
    items.appendleft(held)  # the cancelled consumer puts it back
    queue.taking = False
    queue.hand_over()
    await asyncio.wait_for(waiter, WAIT)
    assert queue.get_nowait() == 7
