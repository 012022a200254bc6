"""``WebSocketConnection.pump``, the reader's hot path, into a ``DeliveryQueue`` and out of
``consume``: real frames from a loopback server, no mocks."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import MessageTimeoutError
from networkpype.protocol.events import Connected
from networkpype.testing.scripted import ScriptedServer
from networkpype.websocket.manager import consume, is_frame
from networkpype.websocket.response import WebSocketResponse
from networkpype.wire.connection import BinaryFrame, WebSocketConnection, _screening_byte
from networkpype.wire.decoding import make_decoder

BINANCE = (b'{"result"', b'{"error"', b'{"id"')


# -- the screen in front of intercept(): pure -------------------------------------------------


@given(
    prefixes=st.lists(st.binary(max_size=6), min_size=1, max_size=4).map(tuple),
    tail=st.binary(max_size=8),
    pick=st.integers(min_value=0, max_value=3),
)
def test_screen_passes_every_frame_that_starts_with_a_prefix(
    prefixes: tuple[bytes, ...], tail: bytes, pick: int
) -> None:
    where, may_be = _screening_byte(prefixes)
    frame = prefixes[pick % len(prefixes)] + tail
    assert frame[where] in may_be


@given(prefixes=st.lists(st.binary(max_size=6), min_size=1, max_size=4).map(tuple))
def test_screen_never_fails_on_short_frames(prefixes: tuple[bytes, ...]) -> None:
    where, may_be = _screening_byte(prefixes)
    for frame in (b"", b"{", b'{"'):
        passed = frame[where] in may_be
        assert passed or not frame.startswith(prefixes)


def test_screen_rules_out_common_data_frames_by_one_byte() -> None:
    where, may_be = _screening_byte(BINANCE)
    for reply in (b'{"result":null,"id":1}', b'{"error":{"code":2},"id":3}', b'{"id":4}'):
        assert reply[where] in may_be
    for data in (
        b'{"e":"trade","E":1,"s":"BTCUSDT"}',
        b'{"stream":"btcusdt@trade","data":{}}',
        b'{"lastUpdateId":1,"bids":[]}',
        b'{"u":400900217,"s":"BNBUSDT"}',
    ):
        assert data[where] not in may_be


def test_no_prefix_or_an_empty_one_shows_every_frame() -> None:
    for prefixes in ((b"",), (b"", b'{"id"')):
        where, may_be = _screening_byte(prefixes)
        assert all(frame[where] in may_be for frame in (b"", b"x", b'{"e":1}'))


# -- pump over a real socket -------------------------------------------------------------------


async def _pump_until(
    conn: WebSocketConnection,
    count: int,
    intercept: object,
    prefixes: tuple[bytes, ...],
) -> tuple[list[bytes | BinaryFrame], asyncio.Task[bool]]:
    offered: list[bytes | BinaryFrame] = []
    enough = asyncio.Event()

    def offer(frame: bytes | BinaryFrame) -> bool:
        offered.append(frame)
        if len(offered) >= count:
            enough.set()
        return True

    async def put(frame: bytes | BinaryFrame) -> None:
        raise AssertionError("offer never refuses here")

    def on_timeout(error: MessageTimeoutError) -> None:
        raise AssertionError(error)

    task = asyncio.create_task(conn.pump(offer, put, on_timeout, intercept, prefixes))  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        await enough.wait()
    return offered, task


async def _stop(conn: WebSocketConnection, task: asyncio.Task[bool]) -> None:
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task  # pump returns once disconnect() closed the connection


async def test_pump_takes_out_prefixed_replies_and_passes_the_rest_in_order(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    seen: list[bytes] = []

    def intercept(frame: bytes) -> bool:
        seen.append(frame)
        return b'"keep"' not in frame  # a reply that is not ours stays in the stream

    frames = [
        '{"result":null,"id":1}',
        '{"e":"trade","seq":1}',
        '{"r',  # shares the screened byte with a prefix, too short to match one
        "",
        '{"re":1}',  # passes the screen, fails the prefix
        '{"id":2,"keep":1}',
        '{"stream":"s","data":{"seq":2}}',
        '{"error":{"code":1},"id":3}',
    ]
    for text in frames:
        await peer.ws.send_str(text)
    await peer.ws.send_bytes(b'{"result":null}')  # binary frames are never screened
    await peer.ws.send_str('{"e":"trade","seq":3}')
    offered, task = await _pump_until(conn, 8, intercept, BINANCE)

    assert seen == [b'{"result":null,"id":1}', b'{"id":2,"keep":1}', b'{"error":{"code":1},"id":3}']
    texts = [f for f in offered if type(f) is bytes]
    assert texts == [
        b'{"e":"trade","seq":1}',
        b'{"r',
        b"",
        b'{"re":1}',
        b'{"id":2,"keep":1}',
        b'{"stream":"s","data":{"seq":2}}',
        b'{"e":"trade","seq":3}',
    ]
    binary = [f for f in offered if isinstance(f, BinaryFrame)]
    assert [f.data for f in binary] == [b'{"result":null}']
    assert offered.index(binary[0]) == 6  # in order with the text frames
    assert conn.messages_in == len(offered) == 8
    assert conn.bytes_in == sum(len(f.data if isinstance(f, BinaryFrame) else f) for f in offered)
    await _stop(conn, task)


async def test_pump_without_prefixes_shows_every_text_frame_to_intercept(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    seen: list[bytes] = []

    def intercept(frame: bytes) -> bool:
        seen.append(frame)
        return frame == b"mine"

    for text in ("a", "mine", "", "b"):
        await peer.ws.send_str(text)
    offered, task = await _pump_until(conn, 3, intercept, ())
    assert seen == [b"a", b"mine", b"", b"b"]
    assert offered == [b"a", b"", b"b"]
    await _stop(conn, task)


async def test_control_frames_advance_the_last_frame_time_not_the_data_time(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    server.autoping = False
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    assert conn.last_frame_monotonic == conn.last_data_monotonic == 0.0
    peer = await server.wait_peer()
    await peer.ws.send_str("first")
    offered, task = await _pump_until(conn, 1, None, ())
    assert offered == [b"first"]
    data_at = conn.last_data_monotonic
    assert data_at > 0.0 and conn.last_frame_monotonic == data_at
    await peer.ws.ping(b"hb")
    await peer.wait_frames(1)  # our pong: the pump has handled the ping
    assert conn.last_data_monotonic == data_at
    assert conn.last_frame_monotonic > data_at
    await _stop(conn, task)


# -- pump -> DeliveryQueue -> consume -----------------------------------------------------------


async def test_consume_hands_out_fresh_equal_responses_and_events_in_order(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    queue: DeliveryQueue[object] = DeliveryQueue(100, droppable=is_frame)
    event = Connected(connection_id="c1", at=0.0, url=server.url)

    async def put(frame: object) -> None:
        await queue.put(frame)

    task = asyncio.create_task(conn.pump(queue.offer, put, queue.fail))
    queue.put_nowait(event)  # before any frame can arrive
    for text in ('{"a":1}', "not json", '{"b":[2]}'):
        await peer.ws.send_str(text)
    await peer.ws.send_bytes(b"\x00")
    got: list[object] = []
    async with asyncio.timeout(5):
        async for item in consume(lambda: queue, make_decoder(None), [], True):
            got.append(item)
            if len(got) == 5:
                break
    assert got[0] is event
    responses = [r for r in got[1:] if type(r) is WebSocketResponse]
    assert len(responses) == len(got) - 1  # all but the event: WebSocketResponse exactly
    assert [r.data for r in responses] == [{"a": 1}, "not json", {"b": [2]}, b"\x00"]
    assert responses[0] == WebSocketResponse({"a": 1})  # a real dataclass instance
    assert dataclasses.replace(responses[1], data=None).data is None
    assert len({id(r) for r in responses}) == 4
    await conn.disconnect()
    async with asyncio.timeout(5):
        await task
