"""An idle reader parks (issue 12, item 7): with the hook on aiohttp's parser, a connection
with nothing for its reader holds no task, and everything that needs the reader wakes it. Each
test waits until the reader is parked, then makes the server do one thing a reader must
handle, under a plain ``WebSocketManager`` with default settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ProtocolViolationError
from networkpype.protocol.events import Disconnected, Reconnected
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.response import WebSocketResponse
from tests.timing import MS, WAIT, wait_until


def _readers() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("networkpype-reader-")]


def _parked(manager: WebSocketManager) -> bool:
    hook = manager.connection._hook
    return hook is not None and hook.parked and not _readers()


@pytest.fixture
async def factory() -> AsyncIterator[ConnectionManagersFactory]:
    made = ConnectionManagersFactory(
        throttler=AsyncThrottler(rate_limits=[RateLimit("default", 1000, 1.0)])
    )
    yield made
    await made.close()


async def _parked_manager(
    factory: ConnectionManagersFactory, server: ScriptedServer, **kw: object
) -> tuple[WebSocketManager, Peer]:
    manager = await factory.get_ws_manager(**kw)  # type: ignore[arg-type]
    await manager.connect(server.url)
    await manager.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "id": 1}))
    peer = await server.wait_peer()
    await peer.wait_frames(1)
    await wait_until(lambda: _parked(manager), "the reader parks")
    return manager, peer


async def _next_event(manager: WebSocketManager, kind: type) -> object:
    async with asyncio.timeout(WAIT):
        while True:
            item = await manager.receive(events=True)
            if isinstance(item, kind):
                return item


async def test_a_parked_reader_answers_a_ping_and_parks_again(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    server.autoping = False  # the test sees our pong
    manager, peer = await _parked_manager(factory, server)
    await peer.ws.ping(b"are you there")
    await wait_until(
        lambda: any(t is aiohttp.WSMsgType.PONG for _, t, _ in peer.received), "the pong"
    )
    assert [d for _, t, d in peer.received if t is aiohttp.WSMsgType.PONG] == [b"are you there"]
    await wait_until(lambda: _parked(manager), "the reader parks again")
    # Data still flows while it is parked, and in order.
    for n in range(3):
        await peer.ws.send_str(f'{{"n":{n}}}')
    got = [await asyncio.wait_for(manager.receive(), WAIT) for _ in range(3)]
    assert [m.data for m in got if m is not None] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_a_parked_reader_sees_the_servers_close_after_the_data_before_it(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    manager, peer = await _parked_manager(factory, server)
    for n in range(5):
        await peer.ws.send_str(f'{{"n":{n}}}')
    await peer.ws.close(code=4001, message=b"maintenance")
    items = []
    async with asyncio.timeout(WAIT):
        while not isinstance(item := await manager.receive(events=True), Reconnected):
            items.append(item)
    data = [i.data for i in items if isinstance(i, WebSocketResponse)]
    assert data == [{"n": n} for n in range(5)]
    closed = [i for i in items if isinstance(i, Disconnected)]
    assert len(closed) == 1 and closed[0].code == 4001
    assert items[-1] is closed[0]  # after every message sent before the close
    await wait_until(lambda: _parked(manager), "the new connection's reader parks")


async def test_a_parked_reader_sees_a_reset(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    manager, peer = await _parked_manager(factory, server)
    peer.abort()
    lost = await _next_event(manager, Disconnected)
    assert isinstance(lost, Disconnected) and lost.code == 1006
    await _next_event(manager, Reconnected)
    assert len(server.peers) == 2


async def test_a_parked_reader_sees_a_protocol_violation(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    manager, peer = await _parked_manager(factory, server)
    assert peer.request is not None and peer.request.transport is not None
    peer.request.transport.write(b"\x83\x00")  # a reserved opcode (RFC 6455 §5.2)
    lost = await _next_event(manager, Disconnected)
    assert isinstance(lost, Disconnected) and lost.error == ProtocolViolationError.__name__
    await _next_event(manager, Reconnected)  # a glitch: retried


async def test_a_parked_reader_wakes_to_put_what_a_full_queue_refused(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    manager, peer = await _parked_manager(factory, server, max_queue=5)
    total = 400
    for n in range(total):
        await peer.ws.send_str(f'{{"n":{n}}}')
    got: list[int] = []
    async with asyncio.timeout(WAIT):
        while len(got) < total:
            message = await manager.receive()
            assert message is not None
            got.append(message.data["n"])
            if len(got) % 50 == 0:
                await asyncio.sleep(MS)  # a consumer that falls behind
    assert got == list(range(total))
    await wait_until(lambda: _parked(manager), "the reader parks once the queue had room")


async def test_disconnect_of_a_parked_reader_is_prompt_and_leaves_no_task(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    manager, peer = await _parked_manager(factory, server)
    await asyncio.wait_for(manager.disconnect(code=4000, reason="done"), WAIT)
    async with asyncio.timeout(WAIT):
        await peer.closed.wait()
    assert peer.ws.close_code == 4000
    assert not manager.connected and _readers() == []
