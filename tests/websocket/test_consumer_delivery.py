"""A consumer's data is sacred: a message leaves the manager's queue only when it is handed
to the consumer, whatever the consumer does (break, raise, get cancelled), with the defaults.

The server numbers its messages; each test checks that every number reaches the consumer
once, in order, except those the test itself consumed with a failing post-processor.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.events import MessagesDropped
from networkpype.testing.scripted import Peer, ScriptedServer, scripted_server
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager, consume
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.response import WebSocketResponse
from networkpype.wire.decoding import JSONOrTextDecoder
from tests.received import response
from tests.timing import MS, wait_until

TOTAL = 3000


class Boom(Exception):
    pass


class FailOn(WebSocketPostProcessor):
    """Raises on every message whose number is a multiple of ``every``."""

    def __init__(self, every: int) -> None:
        self.every = every

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if response.data["n"] % self.every == 0:
            raise Boom(response.data["n"])
        return response


class Yields(WebSocketPostProcessor):
    """A post-processor that awaits (gives other tasks a chance to run mid-message)."""

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        await asyncio.sleep(0)
        return response


async def numbered(peer: Peer) -> None:
    # Sent in one burst so the client's queue holds many messages at once.
    for n in range(1, TOTAL + 1):
        await peer.ws.send_str(json.dumps({"n": n}))


@pytest.fixture
async def numbering_server() -> AsyncIterator[ScriptedServer]:
    async with scripted_server() as server:
        server.on_peer = numbered
        yield server


async def manager(
    session: aiohttp.ClientSession, url: str, *processors: WebSocketPostProcessor, **kw: Any
) -> WebSocketManager:
    ws = WebSocketManager(WebSocketConnection(session), ws_post_processors=list(processors), **kw)
    await ws.connect(url)
    return ws


async def wait_queued(ws: WebSocketManager, count: int) -> None:
    """Until ``count`` messages are queued: the consumer then takes from a full backlog."""
    await wait_until(lambda: len(ws._queue) >= count, f"{count} queued")


async def test_breaking_out_and_resuming_loses_nothing(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, numbering_server.url)
    await wait_queued(ws, TOTAL)
    got: list[int] = []
    async with asyncio.timeout(20):
        while len(got) < TOTAL:
            async for message in ws.iter_messages():
                got.append(message.data["n"])
                if len(got) % 100 == 0:
                    break  # the rest of the backlog must wait for the next loop
    assert got == list(range(1, TOTAL + 1))
    await ws.disconnect()


async def test_a_failing_post_processor_costs_its_own_message_only(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, numbering_server.url, FailOn(97))
    await wait_queued(ws, TOTAL)
    got: list[int] = []
    failed: list[int] = []
    async with asyncio.timeout(20):
        while len(got) + len(failed) < TOTAL:
            try:
                async for message in ws.iter_messages():
                    got.append(message.data["n"])
                    if message.data["n"] == TOTAL:
                        break
            except Boom as exc:
                failed.append(exc.args[0])  # the consumer is told, then reads on
    assert failed == list(range(97, TOTAL + 1, 97))
    assert got == [n for n in range(1, TOTAL + 1) if n % 97]
    await ws.disconnect()


async def test_receive_after_a_failing_post_processor_returns_the_next_message(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, numbering_server.url, FailOn(3))
    await wait_queued(ws, 10)
    assert response(await ws.receive()).data == {"n": 1}
    assert response(await ws.receive()).data == {"n": 2}
    with pytest.raises(Boom):
        await ws.receive()
    assert response(await ws.receive()).data == {"n": 4}
    await ws.disconnect()


@pytest.mark.parametrize("processors", [(), (Yields(),)], ids=["plain", "awaiting-processor"])
async def test_restarting_the_consumer_task_loses_nothing(
    numbering_server: ScriptedServer,
    session: aiohttp.ClientSession,
    processors: tuple[WebSocketPostProcessor, ...],
) -> None:
    ws = await manager(session, numbering_server.url, *processors)
    await wait_queued(ws, TOTAL)
    got: list[int] = []

    async def consumer() -> None:
        async for message in ws.iter_messages():
            got.append(message.data["n"])
            if len(got) % 50 == 0:
                await asyncio.sleep(0)  # cancelled here, or mid post-processor

    async with asyncio.timeout(20):
        while len(got) < TOTAL:
            task = asyncio.create_task(consumer())
            for _ in range(7):  # a few loop turns, then the bot restarts its consumer
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert got == list(range(1, TOTAL + 1))
    await ws.disconnect()


async def test_a_second_waiting_consumer_raises_runtime_error(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, server.url)
    first = asyncio.create_task(ws.receive())
    await asyncio.sleep(10 * MS)  # the first waits
    with pytest.raises(RuntimeError, match="one task at a time"):
        await ws.receive()
    peer = await server.wait_peer()
    await peer.ws.send_str('{"n": 1}')
    assert response(await asyncio.wait_for(first, 2)).data == {"n": 1}  # the first is unharmed
    await ws.disconnect()


class Gate(WebSocketPostProcessor):
    """Holds every message until ``opened`` is set (a slow post-processor)."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.entered = asyncio.Event()

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        self.entered.set()
        await self.opened.wait()
        return response


async def test_a_second_reader_while_a_post_processor_runs_raises_runtime_error(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    """docs/websocket.md's rule (issue 9's doc fix): a task that takes a message while
    another is running a post-processor raises, rather than split or reorder the stream."""
    gate = Gate()
    ws = await manager(session, numbering_server.url, gate)
    await wait_queued(ws, 10)
    first = asyncio.create_task(ws.receive())
    await gate.entered.wait()  # the first holds message 1 in the post-processor
    async with asyncio.timeout(2):  # a second reader let through would wait at the gate
        with pytest.raises(RuntimeError, match="one task at a time"):
            await ws.receive()
        with pytest.raises(RuntimeError, match="one task at a time"):
            async for _ in ws.iter_messages():
                pass
    gate.opened.set()
    assert response(await asyncio.wait_for(first, 2)).data == {"n": 1}
    assert response(await ws.receive()).data == {"n": 2}  # nothing taken by the refused
    await ws.disconnect()


async def test_receive_reports_drops_in_order(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, numbering_server.url, max_queue=100, overflow="drop_oldest")
    await asyncio.sleep(300 * MS)  # the burst overflows the queue while nobody reads
    first = await ws.receive(events=True)
    seen: list[Any] = [first]
    while len(seen) < 101:
        seen.append(await asyncio.wait_for(ws.receive(events=True), 2))
    drops = [item for item in seen if isinstance(item, MessagesDropped)]
    assert len(drops) == 1 and drops[0].count > 0
    numbers = [item.data["n"] for item in seen if isinstance(item, WebSocketResponse)]
    assert numbers == sorted(numbers)  # the newest kept, in order
    await ws.disconnect()


async def test_a_consumer_loop_draining_a_queue_handed_over_reads_on_where_it_is_sent() -> None:
    # A sharded manager's router takes the merged queue over (``hand_over``) while the
    # consumer loop is in the middle of its items: the loop's next item comes from where
    # ``queue_of`` now points, none more from the old queue.
    merged: DeliveryQueue[bytes] = DeliveryQueue(10)
    rest: DeliveryQueue[bytes] = DeliveryQueue(10)
    for n in range(3):
        merged.offer(b"%d" % n)
    rest.offer(b"100")
    current = [merged]
    messages = consume(lambda: current[0], JSONOrTextDecoder(), [], False)
    first = await anext(messages)
    assert first.data == 0
    current[0] = rest
    merged.hand_over()
    second = await anext(messages)
    assert second.data == 100
    assert len(merged.items) == 2  # left for the router
    await messages.aclose()
