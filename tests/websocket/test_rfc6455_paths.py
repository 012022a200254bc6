"""RFC 6455 through a manager on each of the reader's paths (the ``fast`` fixture: the hook
on aiohttp's parser, the fast path without it, the public ``receive()`` only), with and
without permessage-deflate (issue 10, items 1-4): invalid UTF-8 in a text frame or a close
reason fails the connection (1007 to the server, the error to the consumer), close codes are
echoed or answered with 1002, and a response says text or binary. The Autobahn|Testsuite
(tests/autobahn) runs the default path only."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import aiohttp
import pytest

from networkpype.protocol.errors import ConnectionClosedError, ProtocolViolationError
from networkpype.protocol.events import Disconnected
from networkpype.supervisor.policy import RestartPolicy, RestartType
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.response import WebSocketResponse
from tests.supervisor.test_hostile_input import items_until_gave_up
from tests.timing import wait_until

_TEXT, _CLOSE = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.CLOSE
ONCE = RestartPolicy(restart_type=RestartType.TEMPORARY)  # a failure ends the stream


async def _reading(
    server: ScriptedServer, session: aiohttp.ClientSession, compress: bool
) -> tuple[WebSocketManager, Peer]:
    """A manager (``decoder="raw"``) connected and reading, its hook (if any) attached, so
    that the server's frames from now on go through the path under test."""
    manager = WebSocketManager(WebSocketConnection(session, decoder="raw"), restart_policy=ONCE)
    await manager.connect(server.url, compress=compress)
    peer = await server.wait_peer()
    assert peer.ws.compress == (15 if compress else 0)
    hook = manager.connection._hook
    await wait_until(lambda: hook is None or hook.attached, "the reader's hook attached")
    return manager, peer


def _messages(items: list[Any]) -> list[tuple[Any, bool]]:
    return [(i.data, i.is_binary) for i in items if isinstance(i, WebSocketResponse)]


def _disconnected(items: list[Any]) -> Disconnected:
    gaps = [i for i in items if isinstance(i, Disconnected)]
    assert len(gaps) == 1, items
    return gaps[0]


async def _closed_with(peer: Peer) -> int | None:
    """The close code the client sent the server."""
    async with asyncio.timeout(5):
        await peer.closed.wait()
    return peer.ws.close_code


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "deflate"])
async def test_invalid_text_fails_the_connection_with_1007(
    server: ScriptedServer, session: aiohttp.ClientSession, fast: bool, compress: bool
) -> None:
    manager, peer = await _reading(server, session, compress)
    await peer.ws.send_str("caf\u00e9 \u20ac")
    await peer.ws.send_bytes(b"\xff\xfe")  # binary: any bytes
    await peer.ws.send_frame(b"ok \xff\xfe", _TEXT)  # text that is not UTF-8
    await peer.ws.send_str("after")  # never delivered
    items, error = await items_until_gave_up(manager)
    assert _messages(items) == [("caf\u00e9 \u20ac", False), (b"\xff\xfe", True)]
    gap = _disconnected(items)
    assert (gap.code, gap.error) == (1007, "ProtocolViolationError")
    assert isinstance(error.__cause__, ProtocolViolationError) and error.__cause__.code == 1007
    assert await _closed_with(peer) == 1007
    await manager.disconnect()


@pytest.mark.parametrize(
    ("frame", "answer", "error"),
    [
        (struct.pack("!H", 4001) + "bye \u00e9".encode(), 4001, ConnectionClosedError),
        (struct.pack("!H", 1006), 1002, ProtocolViolationError),
        (struct.pack("!H", 5000), 1002, ProtocolViolationError),
        (struct.pack("!H", 1004), 1002, ProtocolViolationError),
        (struct.pack("!H", 1000) + b"\xff\xfe", 1007, ProtocolViolationError),
    ],
    ids=["echoed", "1006", "5000", "reserved-1004", "reason-not-utf8"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "deflate"])
async def test_a_close_frame_is_echoed_or_answered_with_1002_or_1007(
    server: ScriptedServer,
    session: aiohttp.ClientSession,
    fast: bool,
    compress: bool,
    frame: bytes,
    answer: int,
    error: type[Exception],
) -> None:
    manager, peer = await _reading(server, session, compress)
    await peer.ws.send_str("before")
    await peer.ws.send_frame(frame, _CLOSE)
    items, gave_up = await items_until_gave_up(manager)
    assert _messages(items) == [("before", False)]  # delivered before the close is handled
    assert _disconnected(items).code == answer
    assert type(gave_up.__cause__) is error
    assert await _closed_with(peer) == answer
    await manager.disconnect()
