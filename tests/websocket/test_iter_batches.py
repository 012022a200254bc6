"""``iter_batches()``: the batch consumer delivers every message once, in order, decoded, with
``iter_messages()``'s promises: a message leaves the queue only in a list that is yielded,
events in order when asked, errors after the messages before them. Against a loopback
server that numbers its messages, on both of the reader's paths."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from networkpype.demo.exchange import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ConfigurationError
from networkpype.protocol.events import Connected, MessagesDropped
from networkpype.testing.scripted import ScriptedServer, scripted_server
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import BATCH_BYTES, WebSocketManager
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.response import WebSocketResponse
from tests.timing import wait_until
from tests.websocket.test_consumer_delivery import TOTAL, numbered, wait_queued


@pytest.fixture
async def numbering_server() -> AsyncIterator[ScriptedServer]:
    async with scripted_server() as server:
        server.on_peer = numbered
        yield server


async def manager(session: aiohttp.ClientSession, url: str, **kw: Any) -> WebSocketManager:
    decoder = kw.pop("decoder", None)
    processors = kw.pop("ws_post_processors", None)
    ws = WebSocketManager(
        WebSocketConnection(session, decoder=decoder), ws_post_processors=processors, **kw
    )
    await ws.connect(url)
    return ws


async def burst_overflowed(ws: WebSocketManager) -> None:
    """Until the whole burst has reached the queue (of 100) that nobody reads."""
    last = json.dumps({"n": TOTAL}).encode()
    await wait_until(lambda: last in ws._queue.items, "the burst overflowed the queue")
    assert ws._queue.dropped > 0


async def test_every_message_once_in_order_in_lists(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession, fast: bool
) -> None:
    ws = await manager(session, numbering_server.url)
    await wait_queued(ws, TOTAL)
    sizes: list[int] = []
    got: list[int] = []
    async with asyncio.timeout(20):
        async for batch in ws.iter_batches(max_batch=64):
            sizes.append(len(batch))
            got.extend(data["n"] for data in batch)  # decoded data, no response objects
            if len(got) >= TOTAL:
                break
    assert got == list(range(1, TOTAL + 1))
    assert max(sizes) == 64  # a backlog is taken in lists, up to max_batch
    await ws.disconnect()


async def test_a_list_holds_about_batch_bytes_of_payload(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, server.url)
    peer = await server.wait_peer()
    body = json.dumps({"pad": "x" * 1000})
    for _ in range(100):
        await peer.ws.send_str(body)
    await wait_queued(ws, 100)
    batch = await anext(ws.iter_batches())
    assert len(batch) == -(-BATCH_BYTES // len(body))  # the first list past the budget
    await ws.disconnect()


async def test_breaking_out_and_resuming_loses_nothing(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession, fast: bool
) -> None:
    ws = await manager(session, numbering_server.url, max_queue=50)  # the reader waits too
    got: list[int] = []
    async with asyncio.timeout(20):
        while len(got) < TOTAL - 10:
            async for batch in ws.iter_batches(max_batch=7):
                got.extend(data["n"] for data in batch)
                break  # the rest waits for the next iterator
        async for message in ws.iter_messages():  # and the seed's consumer goes on from there
            got.append(message.data["n"])
            if got[-1] == TOTAL:
                break
    assert got == list(range(1, TOTAL + 1))
    await ws.disconnect()


async def test_a_cancelled_consumer_loses_nothing(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, numbering_server.url)
    await wait_queued(ws, TOTAL)
    got: list[int] = []

    async def consumer() -> None:
        async for batch in ws.iter_batches(max_batch=10):
            got.extend(data["n"] for data in batch)
            await asyncio.sleep(0)  # cancelled here

    async with asyncio.timeout(20):
        while len(got) < TOTAL:
            task = asyncio.create_task(consumer())
            for _ in range(5):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert got == list(range(1, TOTAL + 1))
    await ws.disconnect()


class FailsOn:
    """A decoder that raises on every frame whose number is a multiple of ``every``."""

    def __init__(self, every: int) -> None:
        self.every = every

    def decode_text(self, data: bytes) -> Any:
        value = json.loads(data)
        if value["n"] % self.every == 0:
            raise ValueError(value["n"])
        return value

    def decode_binary(self, data: bytes) -> Any:
        return data


async def test_a_failing_frame_is_raised_after_the_list_before_it(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, numbering_server.url, decoder=FailsOn(97))
    await wait_queued(ws, TOTAL)
    got: list[int] = []
    failed: list[int] = []
    async with asyncio.timeout(20):
        while len(got) + len(failed) < TOTAL:
            try:
                async for batch in ws.iter_batches():
                    got.extend(data["n"] for data in batch)
                    if got[-1] == TOTAL:
                        break
            except ValueError as exc:
                failed.append(exc.args[0])  # consumed; the next iterator reads on
    assert failed == list(range(97, TOTAL + 1, 97))
    assert got == [n for n in range(1, TOTAL + 1) if n % 97]
    await ws.disconnect()


@pytest.mark.parametrize("events", [True, False], ids=["events", "data-only"])
async def test_drops_are_reported_in_order_when_events_are_asked(
    numbering_server: ScriptedServer, session: aiohttp.ClientSession, events: bool
) -> None:
    ws = await manager(session, numbering_server.url, max_queue=100, overflow="drop_oldest")
    await burst_overflowed(ws)
    seen: list[Any] = []
    async with asyncio.timeout(10):
        async for batch in ws.iter_batches(events=events):
            seen.extend(batch)
            if isinstance(seen[-1], dict) and seen[-1]["n"] == TOTAL:
                break
    numbers = [item["n"] for item in seen if isinstance(item, dict)]
    if events:  # the connection's opening, the drops, then what was kept
        assert [type(item) for item in seen[:2]] == [Connected, MessagesDropped]
        assert seen[1].count == numbers[0] - 1
        assert len(seen) == len(numbers) + 2
    else:
        assert len(seen) == len(numbers)  # data only
    assert numbers == sorted(numbers)
    assert numbers[-1] == TOTAL  # the newest kept
    await ws.disconnect()


async def test_the_lists_end_after_disconnect(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, server.url)
    peer = await server.wait_peer()
    for n in range(5):
        await peer.ws.send_str(json.dumps({"n": n}))
    await wait_queued(ws, 5)
    await ws.disconnect()
    got = [data["n"] async for batch in ws.iter_batches() for data in batch]
    assert got == list(range(5))  # what was queued, then the end


class Noop(WebSocketPostProcessor):
    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        return response


async def test_post_processors_and_bad_sizes_are_refused(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = await manager(session, server.url, ws_post_processors=[Noop()])
    with pytest.raises(ConfigurationError, match=r"ws_post_processors \(Noop\).*iter_messages"):
        ws.iter_batches()
    await ws.disconnect()
    plain = await manager(session, server.url)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError, match="max_batch"):
            plain.iter_batches(max_batch=bad)  # type: ignore[arg-type]
    await plain.disconnect()


@pytest.fixture
async def factory() -> AsyncIterator[ConnectionManagersFactory]:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 100, 1)]))
    yield factory
    await factory.close()


async def test_a_sharded_manager_batches_every_shard_but_claimed_topics(
    factory: ConnectionManagersFactory,
) -> None:
    async with ExchangeSimulator(rate=200.0) as sim:
        ws = await factory.get_sharded_ws_manager(max_topics_per_connection=1)
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade", "bbbusdt@trade"])
        assert ws.connections == 2
        seen: set[str] = set()
        async with asyncio.timeout(10):
            async for batch in ws.iter_batches():
                seen.update(data["stream"] for data in batch if "stream" in data)
                if len(seen) == 2:
                    break
        only_a = ws.stream("aaausdt@trade")  # the router takes over: what is left is b's
        rest: list[str] = []
        async with asyncio.timeout(10):
            async for batch in ws.iter_batches():
                rest.extend(data["stream"] for data in batch if "stream" in data)
                if len(rest) >= 20:
                    break
        assert set(rest[-10:]) == {"bbbusdt@trade"}  # the first ones may predate the router
        await anext(aiter(only_a))
        await ws.disconnect()


async def test_a_sharded_manager_with_a_dedup_key_refuses_batches(
    factory: ConnectionManagersFactory,
) -> None:
    ws = await factory.get_sharded_ws_manager(dedup_key=lambda data: data.get("seq"))
    with pytest.raises(ConfigurationError, match=r"dedup_key.*iter_messages"):
        ws.iter_batches()
