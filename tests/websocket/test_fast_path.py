"""``pump``'s fast path: frames aiohttp has parsed already are taken in batches, with
control frames, UTF-8 checks, counters and backpressure as on the public ``receive()`` path.
Every test runs both paths over a real loopback socket; the server's frames are all parsed
by the client before the pump starts, so the fast path sees them as one batch."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import MessageTimeoutError, ProtocolViolationError
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.wire.connection import BinaryFrame, WebSocketConnection, _queue_layout_ok

_TEXT = aiohttp.WSMsgType.TEXT


def _payload(frame: bytes | BinaryFrame) -> bytes:
    return frame.data if isinstance(frame, BinaryFrame) else frame


def _on_timeout(error: MessageTimeoutError) -> None:
    raise AssertionError(error)


async def _parsed(conn: WebSocketConnection, peer: Peer, count: int) -> None:
    """Return once the client's aiohttp has parsed ``count`` frames (not read yet)."""
    reader = conn._ws._reader  # type: ignore[union-attr]
    async with asyncio.timeout(5):
        while len(reader._buffer) < count:
            await asyncio.sleep(0.001)


async def test_the_installed_aiohttp_passes_the_self_check(
    server: ScriptedServer, session: aiohttp.ClientSession, fast: bool, hooked: bool
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    assert conn.fast_path is fast
    assert conn.hooked is hooked
    assert not _queue_layout_ok(dict)  # a structure without the layout: the public path
    await conn.disconnect()


async def test_a_burst_keeps_its_order_control_frames_and_counts(
    server: ScriptedServer, session: aiohttp.ClientSession, fast: bool
) -> None:
    server.autoping = False
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    sent: list[bytes | BinaryFrame] = []
    for n in range(100):
        text = f'{{"n":{n},"name":"caf\u00e9"}}' if n % 7 == 0 else f'{{"n":{n}}}'
        await peer.ws.send_str(text)
        sent.append(text.encode())
        if n == 40:
            await peer.ws.ping(b"mid")
        if n == 60:
            await peer.ws.send_bytes(b"\x00bin")
            sent.append(BinaryFrame(b"\x00bin"))
        if n == 70:
            await peer.ws.send_str('{"id":9}')  # a reply, taken out by intercept
    await _parsed(conn, peer, 103)
    batches: list[int] = []
    got: list[bytes | BinaryFrame] = []
    done = asyncio.Event()

    def offer_many(batch: list[bytes | BinaryFrame]) -> int:
        batches.append(len(batch))
        got.extend(batch)
        if len(got) >= len(sent):
            done.set()
        return len(batch)

    replies: list[bytes] = []

    def intercept(frame: bytes) -> bool:
        replies.append(frame)
        return True

    task = asyncio.create_task(
        conn.pump(lambda f: True, _never, _on_timeout, intercept, (b'{"id"',), offer_many)
    )
    async with asyncio.timeout(5):
        await done.wait()
    assert [_payload(f) for f in got] == [_payload(f) for f in sent]
    assert replies == [b'{"id":9}']
    assert [bytes(f) for f in await peer.wait_frames(1)] == [b"mid"]  # our pong
    assert conn.messages_in == len(sent)
    assert conn.bytes_in == sum(len(_payload(f)) for f in sent)
    assert conn.last_data_monotonic > 0.0
    # Parsed frames taken together; on the public path, those receive() returns at once.
    assert max(batches) > 1
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def _never(frame: bytes | BinaryFrame) -> None:
    raise AssertionError("offer never refuses here")


async def test_backpressure_is_counted_in_messages_and_nothing_is_lost(
    server: ScriptedServer, session: aiohttp.ClientSession, fast: bool
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    total = 300
    for n in range(total):
        await peer.ws.send_str(str(n))
    await _parsed(conn, peer, total)
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(5)
    task = asyncio.create_task(
        conn.pump(queue.offer, queue.put, _on_timeout, None, (), queue.offer_many, queue.when_room)
    )
    got: list[bytes | BinaryFrame] = []
    most = 0
    async with asyncio.timeout(5):
        while len(got) < total:
            most = max(most, len(queue))
            got.append(await queue.get())
            await asyncio.sleep(0)  # a slow consumer
    assert got == [str(n).encode() for n in range(total)]
    assert most <= 5
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task


async def test_invalid_utf8_in_a_burst_delivers_what_came_before_and_nothing_after(
    server: ScriptedServer, session: aiohttp.ClientSession, fast: bool
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    for n in range(20):
        await peer.ws.send_str(str(n))
    await peer.ws.send_frame(b"\xff\xfe{", _TEXT)
    for n in range(20, 30):
        await peer.ws.send_str(str(n))
    await _parsed(conn, peer, 31)
    queue: DeliveryQueue[bytes | BinaryFrame] = DeliveryQueue(1000)
    with pytest.raises(ProtocolViolationError) as info:
        async with asyncio.timeout(5):
            await conn.pump(
                queue.offer, queue.put, _on_timeout, None, (), queue.offer_many, queue.when_room
            )
    assert info.value.code == 1007
    assert list(queue.items) == [str(n).encode() for n in range(20)]
    assert conn.messages_in == 20
    assert not conn.connected
