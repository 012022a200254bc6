"""The hook on aiohttp's parser (``networkpype.wire._hook``): data frames parsed while the
reader waits go straight into one batch per socket read, with control frames, UTF-8 checks,
intercepts, counters and backpressure as on the other paths. Unlike test_fast_path.py, the
server sends after the reader has started, so frames go through the hook."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import (
    ConnectionClosedError,
    MessageTimeoutError,
    ProtocolViolationError,
)
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.wire._hook import hook_layout_ok, install
from networkpype.wire.connection import BinaryFrame, WebSocketConnection

_TEXT = aiohttp.WSMsgType.TEXT


def _on_timeout(error: MessageTimeoutError) -> None:
    raise AssertionError(error)


async def _reading(
    session: aiohttp.ClientSession,
    server: ScriptedServer,
    queue: DeliveryQueue[bytes | BinaryFrame],
    **kw: object,
) -> tuple[WebSocketConnection, Peer, asyncio.Task[bool]]:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    task = asyncio.create_task(
        conn.pump(queue.offer, queue.put, _on_timeout, offer_many=queue.offer_many, **kw)  # type: ignore[arg-type]
    )
    async with asyncio.timeout(5):
        while conn._hook is not None and not conn._hook.attached:
            await asyncio.sleep(0)
    return conn, peer, task


async def test_the_installed_aiohttp_takes_the_hook(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    assert conn.hooked and conn.fast_path
    assert not hook_layout_ok(dict, dict)  # no such structures: no hook
    await conn.disconnect()
    WebSocketConnection.hook_allowed = False
    try:
        await conn.connect(server.url)
        assert conn.fast_path and not conn.hooked
    finally:
        WebSocketConnection.hook_allowed = True
        await conn.disconnect()


async def test_no_hook_for_a_parser_that_has_parsed_bytes(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    WebSocketConnection.hook_allowed = False
    try:
        conn = WebSocketConnection(session)
        await conn.connect(server.url)
    finally:
        WebSocketConnection.hook_allowed = True
    ws = conn._ws
    assert ws is not None
    queue = ws._reader
    parser = queue._protocol._payload_parser  # type: ignore[attr-defined]
    parser.feed_data(b"\x81\x05he")  # half a frame, as if it came with the handshake
    assert install(ws, conn._max_msg_size, lambda: False, BinaryFrame) is None
    assert ws._reader is queue and queue._protocol._payload_parser is parser  # type: ignore[attr-defined]
    await conn.disconnect()


async def test_a_stream_keeps_its_order_control_frames_and_counts(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    server.autoping = False
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(100_000)
    conn, peer, task = await _reading(session, server, queue)
    sent: list[bytes] = []
    for n in range(500):
        text = f'{{"n":{n},"name":"caf\u00e9"}}' if n % 7 == 0 else f'{{"n":{n}}}'
        await peer.ws.send_str(text)
        sent.append(text.encode())
        if n == 240:
            await peer.ws.ping(b"mid")
    await peer.ws.send_bytes(b"\x00bin")
    async with asyncio.timeout(5):
        while len(queue) < 501:
            await asyncio.sleep(0.001)
    items = list(queue.items)
    assert items[:500] == sent
    assert isinstance(items[500], BinaryFrame) and items[500].data == b"\x00bin"
    assert conn.messages_in == 501
    assert conn.bytes_in == sum(map(len, sent)) + 4
    assert conn.last_data_monotonic > 0
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def test_backpressure_is_counted_in_messages_and_nothing_is_lost(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(5)
    conn, peer, task = await _reading(session, server, queue)
    total = 3000
    payload = "x" * 200

    async def send() -> None:
        for n in range(total):
            await peer.ws.send_str(f"{n} {payload}")

    sending = asyncio.create_task(send())
    got: list[bytes | BinaryFrame] = []
    most = 0
    paused = False
    async with asyncio.timeout(20):
        while len(got) < total:
            most = max(most, len(queue))
            paused = paused or conn._ws._reader._protocol._reading_paused  # type: ignore[union-attr]
            got.append(await queue.get())
            if len(got) % 3 == 0:
                await asyncio.sleep(0.0005)  # a slow consumer
    await sending
    assert got == [f"{n} {payload}".encode() for n in range(total)]
    assert most <= 5
    assert paused  # the socket stopped being read while the consumer was behind
    assert conn.messages_in == total
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def test_invalid_utf8_delivers_what_came_before_and_nothing_after(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(1000)
    conn, peer, task = await _reading(session, server, queue)
    for n in range(20):
        await peer.ws.send_str(str(n))
    await peer.ws.send_frame(b"\xff\xfe{", _TEXT)
    for n in range(20, 30):
        await peer.ws.send_str(str(n))
    with pytest.raises(ProtocolViolationError) as info:
        async with asyncio.timeout(5):
            await task
    assert info.value.code == 1007
    assert list(queue.items) == [str(n).encode() for n in range(20)]
    assert conn.messages_in == 20
    assert not conn.connected


async def test_data_before_the_servers_close_is_delivered_first(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(1000)
    _conn, peer, task = await _reading(session, server, queue)
    for n in range(50):
        await peer.ws.send_str(str(n))
    await peer.ws.close(code=4001, message=b"bye")
    with pytest.raises(ConnectionClosedError) as info:
        async with asyncio.timeout(5):
            await task
    assert info.value.code == 4001
    assert list(queue.items) == [str(n).encode() for n in range(50)]


async def test_intercepted_frames_leave_the_stream(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    taken: list[bytes] = []

    def intercept(frame: bytes) -> bool:
        taken.append(frame)
        return frame.startswith(b'{"ack"')

    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(1000)
    conn, peer, task = await _reading(
        session, server, queue, intercept=intercept, intercept_prefixes=(b'{"ack"',)
    )
    for n in range(40):
        await peer.ws.send_str(f'{{"ack":{n}}}' if n % 4 == 0 else f'{{"n":{n}}}')
    async with asyncio.timeout(5):
        while len(queue) < 30:
            await asyncio.sleep(0.001)
    assert taken == [f'{{"ack":{n}}}'.encode() for n in range(0, 40, 4)]
    assert list(queue.items) == [f'{{"n":{n}}}'.encode() for n in range(40) if n % 4]
    assert conn.messages_in == 30
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def test_a_cancelled_reader_leaves_its_frames_for_the_next(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(10)
    conn, peer, task = await _reading(session, server, queue)
    total = 500
    for n in range(total):
        await peer.ws.send_str(str(n))
    async with asyncio.timeout(5):
        while not conn._hook.pending:  # type: ignore[union-attr]
            await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not conn._hook.attached  # type: ignore[union-attr]
    got = list(queue.items)
    queue.items.clear()
    bigger: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(100_000)
    task = asyncio.create_task(
        conn.pump(bigger.offer, bigger.put, _on_timeout, offer_many=bigger.offer_many)
    )
    async with asyncio.timeout(5):
        while len(got) + len(bigger) < total:
            await asyncio.sleep(0.001)
    got += list(bigger.items)
    assert got == [str(n).encode() for n in range(total)]
    assert conn.messages_in == total
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task
