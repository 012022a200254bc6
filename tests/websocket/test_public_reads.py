"""The public path's batches (``networkpype.wire._reads``): one list per socket read with
``receive()`` only; frames a full queue refused reach the consumer as it makes room, even
when no frame follows them, in order, none twice."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import MessageTimeoutError, ProtocolViolationError
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.websocket.manager import consume
from networkpype.wire.connection import BinaryFrame, WebSocketConnection
from networkpype.wire.decoding import JSONOrTextDecoder

_TEXT = aiohttp.WSMsgType.TEXT


def _on_timeout(error: MessageTimeoutError) -> None:
    raise AssertionError(error)


async def _public(session: aiohttp.ClientSession, server: ScriptedServer) -> WebSocketConnection:
    WebSocketConnection.fast_path_allowed = False
    try:
        conn = WebSocketConnection(session)
        await conn.connect(server.url)
    finally:
        WebSocketConnection.fast_path_allowed = True
    assert not conn.fast_path
    return conn


async def _pumping(
    session: aiohttp.ClientSession, server: ScriptedServer
) -> tuple[WebSocketConnection, Peer, DeliveryQueue[bytes | BinaryFrame], asyncio.Task[bool]]:
    """A connection on the public path, its server's peer, and its reader's task pumping
    into a delivery queue of 5."""
    conn = await _public(session, server)
    peer = await server.wait_peer()
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(5)
    task = asyncio.create_task(
        conn.pump(queue.offer, queue.put, _on_timeout, None, (), queue.offer_many, queue.when_room)
    )
    return conn, peer, queue, task


async def test_refused_frames_arrive_when_no_frame_follows(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn, peer, queue, task = await _pumping(session, server)
    total = 400
    for n in range(total):
        await peer.ws.send_str(str(n))
    await peer.ws.send_bytes(b"\x00end")  # then the stream is quiet
    got: list[bytes | BinaryFrame] = []
    most = 0
    async with asyncio.timeout(5):
        while len(got) < total + 1:
            most = max(most, len(queue))
            got.append(await queue.get())
            await asyncio.sleep(0)  # a slow consumer
    assert got[:total] == [str(n).encode() for n in range(total)]
    last = got[total]
    assert isinstance(last, BinaryFrame) and last.data == b"\x00end"
    assert most <= 5
    assert conn.messages_in == total + 1
    await asyncio.sleep(0.01)
    assert not queue.items  # nothing twice
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def test_the_consumer_loop_calls_refused_frames_back_when_no_frame_follows(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    # As above, read by the managers' consumer loop (``consume``), which pops the deque
    # itself: it must see the reader's request for room (``when_room``), or the frames
    # refused last would wait for a frame that never comes.
    conn, peer, queue, task = await _pumping(session, server)
    total = 300
    for n in range(total):
        await peer.ws.send_str(str(n))  # then the stream is quiet
    got: list[object] = []
    async with asyncio.timeout(5):
        async for response in consume(lambda: queue, JSONOrTextDecoder(), [], False):
            got.append(response.data)
            if len(got) == total:
                break
            await asyncio.sleep(0)  # a slow consumer
    assert got == list(range(total))
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def test_invalid_utf8_delivers_what_came_before_and_nothing_after(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = await _public(session, server)
    peer = await server.wait_peer()
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(1000)
    for n in range(20):
        await peer.ws.send_str(str(n))
    await peer.ws.send_frame(b"\xff\xfe{", _TEXT)
    for n in range(20, 30):
        await peer.ws.send_str(str(n))
    with pytest.raises(ProtocolViolationError) as info:
        async with asyncio.timeout(5):
            await conn.pump(
                queue.offer, queue.put, _on_timeout, None, (), queue.offer_many, queue.when_room
            )
    assert info.value.code == 1007
    assert list(queue.items) == [str(n).encode() for n in range(20)]
    assert conn.messages_in == 20


async def test_a_withdrawn_request_is_never_called_back() -> None:
    queue: DeliveryQueue[int] = DeliveryQueue(1)
    queue.offer(0)
    called: list[str] = []
    withdraw = queue.when_room(lambda: called.append("first"))
    queue.when_room(lambda: called.append("second"))
    withdraw()
    queue.take_nowait()
    await asyncio.sleep(0)
    assert called == ["second"]
