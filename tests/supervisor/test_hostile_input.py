"""Hostile input over real loopback sockets: what a standalone ``WebSocketConnection`` raises,
and what a supervised ``WebSocketManager`` does (events, reconnection, escalation).

Every supervised case runs beside a healthy neighbour: a second manager on the same factory
(same aiohttp session, same throttler) whose subscription must keep receiving, never
reconnected, whatever the hostile server does to the first. No record at ERROR or above may
be logged by anyone (a crashed actor or an unretrieved task exception would be).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
import pytest
import trustme

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import (
    CertificateError,
    ConnectionClosedError,
    ConnectionFailedError,
    FatalError,
    GaveUpError,
    HandshakeError,
    MessageTooBigError,
    NotConnectedError,
    ProtocolViolationError,
    RetryableError,
)
from networkpype.protocol.events import Disconnected, GaveUp, Reconnected
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy, RestartType
from networkpype.testing.raw import raw_server
from networkpype.testing.scripted import Peer, ScriptedServer, scripted_server
from networkpype.testing.stall import stall_gate
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.wire.decoding import MAX_JSON_DEPTH
from tests.received import response
from tests.timing import MS

COOL_OFF = 0.3  # seconds: the test policy's cool-off for 429 without Retry-After and 1008
LIMIT = 1000  # bytes: max_msg_size of the hostile managers
OVERSIZED = "x" * 5000

_TEXT, _CLOSE = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.CLOSE


def policy(**changes: Any) -> RestartPolicy:
    """The test policy: restarts after 0, <=0.01, <=0.02... s; more than 3 within 60 s
    escalate; 429 without Retry-After and close 1008 cool off ``COOL_OFF`` s."""
    settings: dict[str, Any] = {
        "backoff": BackoffPolicy(initial=0.01, cap=0.05, healthy_after=5.0),
        "max_restarts": 3,
        "within": 60.0,
        "cool_off": COOL_OFF,
    }
    return RestartPolicy(**(settings | changes))


FAST = policy()


def sub(name: str) -> WebSocketJSONRequest:
    return WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": [name]})


# -- the rig: a factory, its managers, and a healthy neighbour ---------------------------------


class Neighbour:
    """A healthy supervised manager on its own server, beside the hostile one."""

    def __init__(self, ws: WebSocketManager, server: ScriptedServer) -> None:
        self.ws = ws
        self.server = server
        self.subscription = sub("healthy")
        self.ticks = 0

    async def check(self) -> None:
        """Its subscription still receives, it was never reconnected, nothing was replayed."""
        peer = self.server.peers[0]
        self.ticks += 1
        await peer.ws.send_str(json.dumps({"tick": self.ticks}))
        response = await asyncio.wait_for(self.ws.receive(), 2)
        assert response is not None and response.data == {"tick": self.ticks}
        assert self.ws.connected
        assert await self.ws.subscriptions() == [self.subscription]
        assert self.server.attempts == 1, "the healthy neighbour was reconnected"
        assert [json.loads(t) for t in peer.texts()] == [self.subscription.payload]


class Rig:
    """One ``ConnectionManagersFactory`` (one shared session) and every manager made on it."""

    def __init__(self, **session_kwargs: Any) -> None:
        self.factory = ConnectionManagersFactory(
            throttler=AsyncThrottler([RateLimit("default", 100, 1.0)])
        )
        self.session_kwargs = session_kwargs
        self.managers: list[WebSocketManager] = []
        self.neighbour: Neighbour

    async def manager(
        self, restart_policy: RestartPolicy = FAST, *, max_msg_size: int = LIMIT, **kwargs: Any
    ) -> WebSocketManager:
        """The factory's manager rebuilt with a test policy (same connection, same throttler)."""
        base = await self.factory.get_ws_manager(max_msg_size=max_msg_size, **self.session_kwargs)
        ws = WebSocketManager(
            base.connection,
            throttler=self.factory.throttler,
            restart_policy=restart_policy,
            **kwargs,
        )
        self.managers.append(ws)
        return ws

    async def close(self) -> None:
        for ws in self.managers:
            await ws.disconnect()
        await self.factory.close()


@asynccontextmanager
async def make_rig(**session_kwargs: Any) -> AsyncIterator[Rig]:
    rig = Rig(**session_kwargs)
    async with scripted_server() as healthy:
        try:
            ws = await rig.manager(max_msg_size=4 * 1024 * 1024)
            await ws.connect(healthy.url)
            rig.neighbour = Neighbour(ws, healthy)
            await ws.subscribe(rig.neighbour.subscription)
            await (await healthy.wait_peer()).wait_frames(1)
            yield rig
        finally:
            await rig.close()


def assert_no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    errors = [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.ERROR]
    assert not errors, errors


@pytest.fixture
async def rig(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Rig]:
    async with make_rig() as r:
        yield r
    assert_no_errors_logged(caplog)


# -- reading helpers ---------------------------------------------------------------------------


async def items_until(ws: WebSocketManager, last: type, timeout: float = 3.0) -> list[Any]:
    """Messages and events from ``receive(events=True)`` up to and including a ``last``."""
    items: list[Any] = []
    async with asyncio.timeout(timeout):
        while not (items and isinstance(items[-1], last)):
            items.append(await ws.receive(events=True))
    return items


async def items_until_gave_up(
    ws: WebSocketManager, timeout: float = 3.0
) -> tuple[list[Any], GaveUpError]:
    """Everything ``iter_messages(events=True)`` yields before it raises ``GaveUpError``."""
    items: list[Any] = []
    with pytest.raises(GaveUpError) as info:
        async with asyncio.timeout(timeout):
            async for item in ws.iter_messages(events=True):
                items.append(item)
    return items, info.value


def kinds(items: list[Any]) -> list[str]:
    return [type(i).__name__ for i in items]


async def data(conn: WebSocketConnection) -> Any:
    response = await asyncio.wait_for(conn.receive(), 2)
    assert response is not None
    return response.data


async def connect_and_subscribe(
    ws: WebSocketManager, server: ScriptedServer
) -> tuple[WebSocketJSONRequest, Peer]:
    subscription = sub("hostile")
    index = len(server.peers)
    await ws.connect(server.url)
    await ws.subscribe(subscription)
    peer = await server.wait_peer(index)
    await peer.wait_frames(1)
    return subscription, peer


async def close_peer(peer: Peer, code: int) -> None:
    """Close with ``code`` and a reason; 1006 is an abrupt TCP abort (no close frame)."""
    if code == 1006:
        peer.abort()
    else:
        await peer.ws.close(code=code, message=b"bye")


# -- 1. malformed JSON and invalid UTF-8 text ----------------------------------------------------

MALFORMED = '{"price": 1.5,'
BAD_UTF8 = b"\xff\xfe{"
NON_ASCII = '{"name": "caf\u00e9 \u20ac \U0001d11e"}'  # valid UTF-8 of 2, 3 and 4 bytes
BAD_UTF8_IN_SKIPPED_FIELD = b'{"price": 1.5, "note": "\xc0\xaf"}'  # an overlong "/"


class Quote(msgspec.Struct):
    price: float


async def push_bad_text(peer: Peer, bad: bytes = BAD_UTF8) -> None:
    await peer.ws.send_str(MALFORMED)
    await peer.ws.send_str(NON_ASCII)
    await peer.ws.send_frame(bad, _TEXT)  # a text frame that is not UTF-8
    await peer.ws.send_str("")
    await peer.ws.send_str('{"ok": true}')


async def closed_with(peer: Peer) -> int | None:
    """The close code the client sent this peer."""
    await asyncio.wait_for(peer.closed.wait(), 2)
    return peer.ws.close_code


@pytest.mark.parametrize(
    ("decoder", "bad"),
    [("json", BAD_UTF8), ("raw", BAD_UTF8), (Quote, BAD_UTF8_IN_SKIPPED_FIELD)],
    ids=["json", "raw", "typed-skipped-field"],
)
async def test_connection_fails_with_1007_on_text_that_is_not_utf8(
    server: ScriptedServer, session: aiohttp.ClientSession, decoder: Any, bad: bytes
) -> None:
    # RFC 6455 8.1 whatever the decoder; a typed msgspec decoder would skip the field unread.
    conn = WebSocketConnection(session, decoder=decoder)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await push_bad_text(peer, bad)
    assert await data(conn) == MALFORMED
    valid = await data(conn)
    assert valid == (json.loads(NON_ASCII) if decoder == "json" else NON_ASCII)  # not a Quote
    with pytest.raises(ProtocolViolationError) as info:
        await data(conn)
    assert info.value.code == 1007 and "not valid UTF-8" in str(info.value)
    assert isinstance(info.value, ConnectionClosedError)  # a ConnectionError, retried
    assert not conn.connected
    with pytest.raises(NotConnectedError):  # nothing after the invalid frame is delivered
        await conn.receive()
    assert await closed_with(peer) == 1007


async def test_manager_fails_with_1007_on_bad_text_and_reconnects(
    server: ScriptedServer, rig: Rig
) -> None:
    ws = await rig.manager()
    subscription, first = await connect_and_subscribe(ws, server)
    await push_bad_text(first)
    items = await items_until(ws, Reconnected)
    assert kinds(items) == [
        "Connected", "WebSocketResponse", "WebSocketResponse", "Disconnected", "Reconnected"
    ]  # fmt: skip
    assert [i.data for i in items[1:3]] == [MALFORMED, json.loads(NON_ASCII)]
    gap = items[3]
    assert (gap.code, gap.error) == (1007, "ProtocolViolationError")
    assert "not valid UTF-8" in gap.cause
    assert await closed_with(first) == 1007
    second = await server.wait_peer(1)
    assert [json.loads(f) for f in await second.wait_frames(1)] == [subscription.payload]
    await second.ws.send_str('{"ok": true}')
    assert response(await asyncio.wait_for(ws.receive(), 2)).data == {"ok": True}
    await rig.neighbour.check()


async def test_manager_not_restarted_raises_the_1007_error_to_the_consumer(
    server: ScriptedServer, rig: Rig
) -> None:
    # The error reaches the consumer: a manager whose supervisor does not restart it ends its
    # stream with the error as the cause.
    ws = await rig.manager(policy(restart_type=RestartType.TEMPORARY))
    _, peer = await connect_and_subscribe(ws, server)
    await push_bad_text(peer)
    items, error = await items_until_gave_up(ws)
    assert kinds(items) == [
        "Connected", "WebSocketResponse", "WebSocketResponse", "Disconnected", "GaveUp"
    ]  # fmt: skip
    assert isinstance(error.__cause__, ProtocolViolationError) and error.__cause__.code == 1007
    await rig.neighbour.check()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Valid JSON nested deeper than the library's limit: text on every Python (msgspec alone
# parses 2,000 levels on 3.13 but not on 3.11).
DEEP_JSON = nested(2000)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 2000, 20_000])
async def test_connection_deeply_nested_json_is_delivered_as_text(
    server: ScriptedServer, session: aiohttp.ClientSession, depth: int
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await peer.ws.send_str(nested(depth))
    await peer.ws.send_str(nested(MAX_JSON_DEPTH))  # the deepest that is parsed
    await peer.ws.send_str('{"after": 1}')
    assert await data(conn) == nested(depth)
    deepest = await data(conn)
    for _ in range(MAX_JSON_DEPTH - 1):
        assert isinstance(deepest, list)
        deepest = deepest[0]
    assert deepest == []
    assert await data(conn) == {"after": 1}
    await conn.disconnect()


async def test_manager_deeply_nested_json_does_not_end_the_stream(
    server: ScriptedServer, rig: Rig
) -> None:
    ws = await rig.manager(max_msg_size=1 << 20)
    _, peer = await connect_and_subscribe(ws, server)
    await peer.ws.send_str(DEEP_JSON)
    await peer.ws.send_str(nested(MAX_JSON_DEPTH + 1))
    await peer.ws.send_str('{"after": 1}')
    got: list[Any] = []
    try:
        async with asyncio.timeout(2):
            async for item in ws.iter_messages():
                got.append(item.data)
                if len(got) == 3:
                    break
    finally:
        await rig.neighbour.check()  # the neighbour is unaffected either way
    assert got == [DEEP_JSON, nested(MAX_JSON_DEPTH + 1), {"after": 1}]


# -- 2. oversized messages ---------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
async def test_connection_oversized_message_names_size_and_limit_then_reconnects(
    server: ScriptedServer, session: aiohttp.ClientSession, binary: bool
) -> None:
    conn = WebSocketConnection(session, max_msg_size=LIMIT)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    if binary:
        await peer.ws.send_bytes(OVERSIZED.encode())
    else:
        await peer.ws.send_str(OVERSIZED)
    with pytest.raises(MessageTooBigError) as info:
        await asyncio.wait_for(conn.receive(), 2)
    assert (info.value.size, info.value.limit) == (5000, LIMIT)
    assert "5000" in str(info.value) and f"max_msg_size={LIMIT}" in str(info.value)
    assert server.url in str(info.value)
    assert not conn.connected
    # The same object opens again (the supervisor reuses it for every incarnation).
    await conn.connect(server.url)
    await (await server.wait_peer(1)).ws.send_str("[1]")
    assert await data(conn) == [1]
    await conn.disconnect()


async def test_manager_one_oversized_message_reconnects_and_replays(
    server: ScriptedServer, rig: Rig
) -> None:
    ws = await rig.manager()
    subscription, first = await connect_and_subscribe(ws, server)
    await first.ws.send_str(OVERSIZED)
    items = await items_until(ws, Reconnected)
    assert kinds(items) == ["Connected", "Disconnected", "Reconnected"]
    gap = items[1]
    assert gap.error == "MessageTooBigError" and gap.code is None
    assert "5000" in gap.cause and f"max_msg_size={LIMIT}" in gap.cause
    second = await server.wait_peer(1)
    assert [json.loads(f) for f in await second.wait_frames(1)] == [subscription.payload]
    await second.ws.send_str('{"after": 1}')
    assert response(await asyncio.wait_for(ws.receive(), 2)).data == {"after": 1}
    await rig.neighbour.check()


async def test_manager_oversized_on_every_connection_escalates(
    server: ScriptedServer, rig: Rig
) -> None:
    async def flood(peer: Peer) -> None:
        await peer.ws.send_str(OVERSIZED)

    server.on_peer = flood
    ws = await rig.manager()  # max_restarts=3 within 60 s
    started = time.monotonic()
    await ws.connect(server.url)
    items, error = await items_until_gave_up(ws)
    assert kinds(items) == [
        "Connected",
        *["Disconnected", "Reconnected"] * 3,
        "Disconnected",
        "GaveUp",
    ]
    assert all(i.error == "MessageTooBigError" for i in items if isinstance(i, Disconnected))
    assert isinstance(error.__cause__, MessageTooBigError)
    assert (error.__cause__.size, error.__cause__.limit) == (5000, LIMIT)
    assert "max_restarts=3" in str(error) and "max_msg_size" in str(error)
    assert server.attempts == 4  # the first connection and 3 restarts, then no more
    assert time.monotonic() - started < 1000 * MS
    await asyncio.sleep(50 * MS)  # room for a wrongful restart to show up
    assert server.attempts == 4
    await rig.neighbour.check()


# -- 3. unexpected binary frames -----------------------------------------------------------------

BLOBS = [b"\x1f\x8b\x08\x00\xff garbage", b"", bytes(range(256))]


async def test_connection_delivers_unexpected_binary_as_bytes(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    for blob in BLOBS:
        await peer.ws.send_bytes(blob)
    assert [await data(conn) for _ in BLOBS] == BLOBS
    assert conn.connected
    await conn.disconnect()


async def test_manager_delivers_unexpected_binary_as_bytes(
    server: ScriptedServer, rig: Rig
) -> None:
    ws = await rig.manager()
    _, peer = await connect_and_subscribe(ws, server)
    for blob in BLOBS:
        await peer.ws.send_bytes(blob)
    got = [response(await asyncio.wait_for(ws.receive(), 2)).data for _ in BLOBS]
    assert got == BLOBS and all(type(g) is bytes for g in got)
    assert ws.connected and server.attempts == 1
    await rig.neighbour.check()


# -- 4. close codes ------------------------------------------------------------------------------

RETRIED_CLOSES = [1000, 1001, 1006, 1008, 1011, 4000, 4999]
GLITCH_CLOSES = [1002, 1003, 1007]  # protocol/data errors: retried, given up on if they repeat


@pytest.mark.parametrize("code", RETRIED_CLOSES + GLITCH_CLOSES)
async def test_connection_close_code_is_a_connection_closed_error(
    server: ScriptedServer, session: aiohttp.ClientSession, code: int
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    await close_peer(await server.wait_peer(), code)
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(conn.receive(), 2)
    assert info.value.code == code
    assert info.value.reason == ("" if code == 1006 else "bye")
    assert f"code {code}" in str(info.value) and server.url in str(info.value)
    assert not conn.connected


@pytest.mark.parametrize("code", RETRIED_CLOSES + GLITCH_CLOSES)
async def test_manager_close_code_reconnects_and_replays(
    server: ScriptedServer, rig: Rig, code: int
) -> None:
    # The default policy (issue 9, item 6), but for 1008, whose default cool-off is 60 s.
    ws = await rig.manager(FAST if code == 1008 else RestartPolicy())
    subscription, first = await connect_and_subscribe(ws, server)
    await first.ws.send_str('{"seq": 1}')
    closed_at = time.monotonic()
    await close_peer(first, code)
    items = await items_until(ws, Reconnected)
    assert kinds(items) == ["Connected", "WebSocketResponse", "Disconnected", "Reconnected"]
    assert items[1].data == {"seq": 1}  # delivered before the gap
    assert items[2].code == code and str(code) in items[2].cause
    second = await server.wait_peer(1)
    assert [json.loads(f) for f in await second.wait_frames(1)] == [subscription.payload]
    waited = server.attempt_times[1] - closed_at
    if code == 1008:
        assert waited >= COOL_OFF, f"1008 must cool off {COOL_OFF} s, redialled after {waited}"
    else:
        assert waited < COOL_OFF, f"close {code} is retried at once, redialled after {waited}"
    await second.ws.send_str('{"seq": 2}')
    assert response(await asyncio.wait_for(ws.receive(), 2)).data == {"seq": 2}
    assert server.attempts == 2
    await rig.neighbour.check()


async def recovers_after_user_reconnects(
    ws: WebSocketManager, server: ScriptedServer, index: int = 1
) -> None:
    """After a give-up the user may disconnect and connect again: the manager still works."""
    await ws.disconnect()
    await ws.connect(server.url)
    await (await server.wait_peer(index)).ws.send_str('{"back": true}')
    assert response(await asyncio.wait_for(ws.receive(), 2)).data == {"back": True}


def close_every_new_peer(server: ScriptedServer, frame: bytes) -> None:
    """From now on the server sends ``frame`` as a close frame on every new connection."""

    async def close_at_once(peer: Peer) -> None:
        await peer.ws.send_frame(frame, _CLOSE)

    server.on_peer = close_at_once


@pytest.mark.parametrize("code", GLITCH_CLOSES)
async def test_manager_glitch_close_code_is_retried_and_gives_up_only_when_it_repeats(
    server: ScriptedServer, rig: Rig, code: int
) -> None:
    # Test policy: more than 3 restarts within 60 s escalate (the default is 15 within 900 s).
    escalated: list[GaveUpError] = []
    ws = await rig.manager(on_escalate=lambda _cid, err: escalated.append(err))
    _, first = await connect_and_subscribe(ws, server)
    close_every_new_peer(server, struct.pack("!H", code))
    await close_peer(first, code)
    items, error = await items_until_gave_up(ws)
    assert kinds(items)[:3] == ["Connected", "Disconnected", "Reconnected"]  # one is a glitch
    assert server.attempts == 1 + 3  # the first connection, then the three allowed restarts
    assert isinstance(error.__cause__, ConnectionClosedError) and error.__cause__.code == code
    assert f"close code {code}" in str(error) and "max_restarts=3" in str(error)
    assert escalated == [error]
    await rig.neighbour.check()
    server.on_peer = None
    await recovers_after_user_reconnects(ws, server, index=4)


@pytest.mark.parametrize(
    ("frame", "local_code", "says"),
    [
        (struct.pack("!H", 1004), 1002, "Invalid close code: 1004"),
        (struct.pack("!H", 1006), 1002, "code 1006, which no endpoint may send"),
        (struct.pack("!H", 5000), 1002, "code 5000, which no endpoint may send"),
        (struct.pack("!H", 1000) + b"\xff\xfe", 1007, "Invalid UTF-8"),
    ],
    ids=["reserved-close-code", "close-code-1006", "close-code-5000", "close-reason-not-utf8"],
)
async def test_manager_protocol_violation_in_close_frame_is_retried(
    server: ScriptedServer, rig: Rig, frame: bytes, local_code: int, says: str
) -> None:
    # aiohttp rejects the frame and closes with its own code; the policy classifies that code:
    # a glitch a healthy venue may produce once, so the manager reconnects and replays (with
    # the default policy).
    ws = await rig.manager(RestartPolicy())
    subscription, first = await connect_and_subscribe(ws, server)
    await first.ws.send_frame(frame, _CLOSE)
    items = await items_until(ws, Reconnected)
    assert kinds(items) == ["Connected", "Disconnected", "Reconnected"]
    assert items[1].code == local_code and says in items[1].cause
    second = await server.wait_peer(1)
    assert [json.loads(f) for f in await second.wait_frames(1)] == [subscription.payload]
    await rig.neighbour.check()


@pytest.mark.parametrize(
    "raw_frame",
    [b"\x83\x00", b"\xc1\x02hi", b"\xa1\x02hi"],
    ids=["reserved-opcode", "rsv1-without-deflate", "rsv2"],
)
async def test_manager_reserved_opcode_or_rsv_bit_is_retried(
    server: ScriptedServer, rig: Rig, raw_frame: bytes
) -> None:
    # One malformed frame from an otherwise healthy venue: a glitch, reconnected and replayed
    # (with the default policy).
    ws = await rig.manager(RestartPolicy())
    subscription, first = await connect_and_subscribe(ws, server)
    assert first.request is not None and first.request.transport is not None
    first.request.transport.write(raw_frame)  # below aiohttp's writer: bytes as they are
    items = await items_until(ws, Reconnected)
    assert kinds(items) == ["Connected", "Disconnected", "Reconnected"]
    assert items[1].code == 1002
    second = await server.wait_peer(1)
    assert [json.loads(f) for f in await second.wait_frames(1)] == [subscription.payload]
    await rig.neighbour.check()


async def test_manager_close_frame_without_a_code_reconnects_and_replays(
    server: ScriptedServer, rig: Rig
) -> None:
    ws = await rig.manager()
    subscription, first = await connect_and_subscribe(ws, server)
    await first.ws.send_frame(b"", _CLOSE)  # a close frame with no status code
    items = await items_until(ws, Reconnected)
    assert kinds(items) == ["Connected", "Disconnected", "Reconnected"]
    second = await server.wait_peer(1)
    assert [json.loads(f) for f in await second.wait_frames(1)] == [subscription.payload]
    await rig.neighbour.check()


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1008, 1011, 1014, 3000, 4999])
async def test_connection_echoes_a_valid_close_code_and_reason(
    server: ScriptedServer, session: aiohttp.ClientSession, code: int
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await peer.ws.send_frame(struct.pack("!H", code) + "au revoir \u00e9".encode(), _CLOSE)
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(conn.receive(), 2)
    assert type(info.value) is ConnectionClosedError  # the server's close, not a violation
    assert (info.value.code, info.value.reason) == (code, "au revoir \u00e9")
    assert await closed_with(peer) == code  # echoed (RFC 6455 5.5.1)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
async def test_connection_answers_a_close_code_no_endpoint_may_send_with_1002(
    server: ScriptedServer, session: aiohttp.ClientSession, code: int
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await peer.ws.send_frame(struct.pack("!H", code) + b"bye", _CLOSE)
    with pytest.raises(ProtocolViolationError) as info:
        await asyncio.wait_for(conn.receive(), 2)
    assert info.value.code == 1002
    assert await closed_with(peer) == 1002
    assert not conn.connected


async def fill_send_buffers(conn: WebSocketConnection, peer: Peer) -> None:
    """Stop the server reading, then send until a write blocks: the client's TCP send buffer
    and aiohttp's transport buffer are full, so a close frame can no longer be written."""
    assert peer.request is not None and peer.request.transport is not None
    peer.request.transport.pause_reading()
    chunk = b"x" * (1 << 20)
    for _ in range(256):  # loopback buffers hold a few MB; 256 MB is far beyond them
        try:
            await asyncio.wait_for(conn.send_frame(chunk), 0.5)
        except TimeoutError:
            return
    raise AssertionError("the sends never blocked")


@pytest.mark.parametrize("how", ["disconnect", "invalid-text"])
async def test_a_close_handshake_that_cannot_complete_is_bounded(
    server: ScriptedServer, session: aiohttp.ClientSession, how: str
) -> None:
    # The server reads nothing: our close frame cannot even be written. The handshake is
    # given close_timeout, then the TCP connection is dropped.
    conn = WebSocketConnection(session, close_timeout=0.2)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    if how == "invalid-text":
        await peer.ws.send_frame(BAD_UTF8, _TEXT)
    await fill_send_buffers(conn, peer)
    async with asyncio.timeout(5):  # a bound, far above close_timeout: not a speed check
        if how == "disconnect":
            await conn.disconnect()
        else:
            with pytest.raises(ProtocolViolationError):
                await conn.receive()
    assert not conn.connected


async def test_close_frame_without_a_code_is_reported_as_1005(
    server: ScriptedServer, session: aiohttp.ClientSession, rig: Rig
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    await (await server.wait_peer()).ws.send_frame(b"", _CLOSE)
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(conn.receive(), 2)
    assert info.value.code == 1005 and "code 1005" in str(info.value)
    ws = await rig.manager()
    _, peer = await connect_and_subscribe(ws, server)
    await peer.ws.send_frame(b"", _CLOSE)
    gap = (await items_until(ws, Disconnected))[-1]
    assert gap.code == 1005


async def test_subscribe_after_give_up_is_an_error_not_a_silent_record(
    server: ScriptedServer, rig: Rig
) -> None:
    ws = await rig.manager()
    _, first = await connect_and_subscribe(ws, server)
    server.status = 401  # the redial is refused: fatal
    await close_peer(first, 1001)
    await items_until_gave_up(ws)
    with pytest.raises(ConnectionError):
        await ws.subscribe(sub("too-late"))


# -- 5. HTTP 429 / 503 on the re-handshake -------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"Retry-After": "1"}, 1.0),
        ({}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ],
    ids=["seconds", "absent", "http-date"],
)
async def test_connection_429_is_retryable_handshake_error_with_retry_after(
    server: ScriptedServer,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    server.status, server.extra_headers = 429, headers
    conn = WebSocketConnection(session)
    with pytest.raises(HandshakeError) as info:
        await conn.connect(server.url)
    assert isinstance(info.value, RetryableError)
    assert info.value.status == 429 and info.value.retry_after == retry_after
    assert "HTTP 429" in str(info.value) and server.url in str(info.value)
    assert not conn.connected


async def redial_after_close(ws: WebSocketManager, server: ScriptedServer) -> list[Any]:
    """Close the first connection (1001) and read up to the reconnection."""
    first = server.peers[0]
    await first.ws.close(code=1001)
    return await items_until(ws, Reconnected)


@pytest.mark.parametrize(
    ("headers", "least_wait"),
    [({"Retry-After": "1"}, 0.9), ({}, COOL_OFF)],
    ids=["retry-after-1s", "no-retry-after"],
)
async def test_manager_429_on_rehandshake_cools_off(
    server: ScriptedServer, rig: Rig, headers: dict[str, str], least_wait: float
) -> None:
    ws = await rig.manager()
    subscription, _ = await connect_and_subscribe(ws, server)
    server.status_script, server.extra_headers = [429], headers
    items = await redial_after_close(ws, server)
    assert kinds(items) == ["Connected", "Disconnected", "Reconnected"]
    assert items[-1].attempts == 2
    refused, accepted = server.attempt_times[1], server.attempt_times[2]
    assert accepted - refused >= least_wait, f"redialled {accepted - refused:.3f} s after 429"
    assert [json.loads(f) for f in await (await server.wait_peer(1)).wait_frames(1)] == [
        subscription.payload
    ]
    assert server.attempts == 3
    await rig.neighbour.check()


async def test_manager_503_on_rehandshake_is_retried_with_backoff(
    server: ScriptedServer, rig: Rig
) -> None:
    # No jitter: restart k waits exactly 0, 0.02, 0.04, 0.08 s. A cool-off (10 s) would time out.
    backoff = BackoffPolicy(initial=0.02, cap=0.1, jitter=0.0, healthy_after=5.0)
    ws = await rig.manager(policy(backoff=backoff, max_restarts=10, cool_off=10.0))
    subscription, _ = await connect_and_subscribe(ws, server)
    server.status_script = [503, 503, 503]
    items = await redial_after_close(ws, server)
    assert kinds(items) == ["Connected", "Disconnected", "Reconnected"]
    assert items[-1].attempts == 4
    stamps = server.attempt_times[1:]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) == 3
    for gap, least in zip(gaps, [0.02, 0.04, 0.08], strict=True):
        assert gap >= least * 0.95, f"backoff gaps {gaps}"
    assert [json.loads(f) for f in await (await server.wait_peer(1)).wait_frames(1)] == [
        subscription.payload
    ]
    await rig.neighbour.check()


# -- 6. garbage instead of an upgrade ------------------------------------------------------------

# reply (None: close without reading), error, what the message says, TCP connections per
# connect(): aiohttp itself retries an idempotent GET once when the server hangs up before
# answering (RFC 9112 section 9.3.1); that is inside one connect(), not a supervisor retry.
GARBAGE = {
    "http-200-with-body": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
        HandshakeError,
        "HTTP 200",
        1,
    ),
    "101-with-wrong-accept-key": (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: bm9wZQ==\r\n\r\n",
        HandshakeError,
        "invalid WebSocket upgrade response",
        1,
    ),
    "not-http": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", ConnectionFailedError, "Bad status line", 1),
    "hang-up-after-request": (
        b"",
        ConnectionFailedError,
        "closed the connection during the opening handshake",
        2,
    ),
    "closed-at-once": (None, ConnectionFailedError, "could not connect", 2),
}


@pytest.mark.parametrize("case", list(GARBAGE))
async def test_connection_garbage_instead_of_upgrade_is_a_clear_error(
    session: aiohttp.ClientSession, case: str
) -> None:
    reply, error, says, dials = GARBAGE[case]
    async with raw_server(reply) as raw:
        conn = WebSocketConnection(session)
        with pytest.raises(error) as info:
            await asyncio.wait_for(conn.connect(raw.url), 2)
        message = str(info.value)
        assert message.startswith(raw.url) and says in message
        assert isinstance(info.value, RetryableError) and isinstance(info.value, ConnectionError)
        assert info.value.__cause__ is not None
        assert not conn.connected and raw.connections == dials


@pytest.mark.parametrize("case", list(GARBAGE))
async def test_manager_first_connect_to_garbage_raises_and_is_not_retried(
    rig: Rig, case: str
) -> None:
    reply, error, says, dials = GARBAGE[case]
    async with raw_server(reply) as raw:
        ws = await rig.manager()
        with pytest.raises(error, match=says):
            await asyncio.wait_for(ws.connect(raw.url), 2)
        await asyncio.sleep(50 * MS)  # room for a wrongful redial to show up
        assert raw.connections == dials
        assert not ws.connected
    await rig.neighbour.check()


async def test_connection_hang_up_mid_response_says_so(session: aiohttp.ClientSession) -> None:
    async with raw_server(b"HTTP/1.1 200") as raw:
        conn = WebSocketConnection(session)
        with pytest.raises(ConnectionFailedError) as info:
            await asyncio.wait_for(conn.connect(raw.url), 2)
    message = str(info.value)
    assert message.startswith(raw.url)
    assert "RawResponseMessage" not in message
    assert "disconnected" in message.lower() or "closed" in message.lower()


async def test_connection_silent_server_times_out_with_a_session_timeout() -> None:
    # The handshake is bounded by the session's timeout (aiohttp's default: 300 s total).
    async with (
        stall_gate() as gate,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as session,
    ):
        conn = WebSocketConnection(session)
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError, match="opening handshake timed out") as info:
            await asyncio.wait_for(conn.connect(gate.url), 2)
        assert time.monotonic() - started < 1.0
        assert str(info.value).startswith(gate.url) and len(gate.held) == 1


# -- 7. TLS ------------------------------------------------------------------------------------


class Tls:
    """A trustme CA, a server certificate for 127.0.0.1, and a count of TLS ClientHellos."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(self.server_context)
        self.hellos = 0
        self.server_context.sni_callback = self._hello  # called on every ClientHello

    def _hello(self, *_args: Any) -> None:
        self.hellos += 1

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def serve_untrusted_certificate(self) -> None:
        """From the next handshake on, present a certificate from a CA the client never saw."""
        trustme.CA().issue_cert("127.0.0.1").configure_cert(self.server_context)


@pytest.fixture
async def tls() -> AsyncIterator[tuple[Tls, ScriptedServer]]:
    t = Tls()
    async with scripted_server(ssl_context=t.server_context) as s:
        yield t, s


def assert_clear_certificate_error(error: BaseException | None, url: str) -> None:
    assert isinstance(error, CertificateError)
    assert isinstance(error, FatalError) and isinstance(error, ConnectionError)
    assert str(error).startswith(url) and "verify_ssl=False" in str(error)


async def test_connection_untrusted_certificate_fails_at_once_unless_verify_off(
    tls: tuple[Tls, ScriptedServer], session: aiohttp.ClientSession
) -> None:
    t, server = tls
    conn = WebSocketConnection(session)
    with pytest.raises(CertificateError) as info:
        await asyncio.wait_for(conn.connect(server.url), 2)
    assert_clear_certificate_error(info.value, server.url)
    assert t.hellos == 1 and server.attempts == 0 and not conn.connected
    await conn.connect(server.url, verify_ssl=False)
    await (await server.wait_peer()).ws.send_str('{"secure": "enough"}')
    assert await data(conn) == {"secure": "enough"}
    await conn.disconnect()


async def test_manager_first_connect_certificate_error_is_not_retried(
    tls: tuple[Tls, ScriptedServer], rig: Rig
) -> None:
    t, server = tls
    ws = await rig.manager()
    with pytest.raises(CertificateError) as info:
        await asyncio.wait_for(ws.connect(server.url), 2)
    assert_clear_certificate_error(info.value, server.url)
    await asyncio.sleep(50 * MS)  # room for a wrongful retry to show up
    assert t.hellos == 1
    await rig.neighbour.check()


async def test_manager_certificate_error_on_reconnect_gives_up_without_retrying(
    tls: tuple[Tls, ScriptedServer], caplog: pytest.LogCaptureFixture
) -> None:
    t, server = tls
    # The session trusts the CA: the first connection verifies and opens.
    async with make_rig(connector=aiohttp.TCPConnector(ssl=t.client_context())) as rig:
        ws = await rig.manager()
        _, first = await connect_and_subscribe(ws, server)
        t.serve_untrusted_certificate()
        hellos = t.hellos
        await first.ws.close(code=1001)
        items, error = await items_until_gave_up(ws)
        assert kinds(items) == ["Connected", "Disconnected", "GaveUp"]
        assert_clear_certificate_error(error.__cause__, server.url)
        assert "certificate" in str(error)
        await asyncio.sleep(50 * MS)  # room for a wrongful retry to show up
        assert t.hellos - hellos == 1, "a certificate failure was retried"
        assert server.attempts == 1
        await rig.neighbour.check()
    assert_no_errors_logged(caplog)


# -- 8. log lines --------------------------------------------------------------------------------


async def test_disconnect_and_give_up_are_logged_with_their_connection(
    server: ScriptedServer, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="networkpype")
    ws = await rig.manager()
    _, first = await connect_and_subscribe(ws, server)
    mark = len(caplog.records)
    await first.ws.close(code=1001, message=b"maintenance")
    gap = (await items_until(ws, Reconnected))[-2]
    assert isinstance(gap, Disconnected)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records[mark:]]
    assert any(
        level == logging.INFO and server.url in text and "1001" in text and "maintenance" in text
        for level, text in lines
    ), lines
    assert any(
        level == logging.INFO and "restarting" in text and gap.connection_id in text
        for level, text in lines
    ), lines
    assert all(level < logging.WARNING for level, _ in lines), "a retried gap is not a warning"

    mark = len(caplog.records)
    server.status = 401  # the redial is refused: fatal
    await (await server.wait_peer(1)).ws.close(code=1001)
    items, _ = await items_until_gave_up(ws)
    assert isinstance(items[-1], GaveUp) and "401" in items[-1].cause
    warnings = [r.getMessage() for r in caplog.records[mark:] if r.levelno == logging.WARNING]
    assert any(
        "gave up" in text and gap.connection_id in text and "401" in text for text in warnings
    ), warnings
