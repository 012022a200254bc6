"""A response says whether its frame was text or binary; ``disconnect()`` closes with the
caller's code and reason (issue 10, item 3). Real loopback servers."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from networkpype.protocol.errors import ConfigurationError
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketBinaryRequest, WebSocketPlainTextRequest
from networkpype.websocket.response import WebSocketResponse
from tests.received import response
from tests.timing import wait_until


class Reversed:
    """A decoder of one's own that makes text and binary frames the same type."""

    def decode_text(self, data: bytes) -> Any:
        return data[::-1]

    def decode_binary(self, data: bytes) -> Any:
        return data[::-1]


def test_the_seed_constructor_makes_a_text_response() -> None:
    assert WebSocketResponse({"a": 1}) == WebSocketResponse(data={"a": 1}, is_binary=False)
    assert WebSocketResponse(b"x", is_binary=True).is_binary


@pytest.mark.parametrize("decoder", [None, "raw", Reversed()], ids=["json", "raw", "custom"])
async def test_connection_response_says_text_or_binary(
    echo_server: ScriptedServer, session: aiohttp.ClientSession, decoder: Any
) -> None:
    conn = WebSocketConnection(session, decoder=decoder)
    await conn.connect(echo_server.url)
    await conn.send_frame('{"a":1}')
    await conn.send_frame(b'{"a":1}')
    text, binary = await conn.receive(), await conn.receive()
    assert text is not None and binary is not None
    assert (text.is_binary, binary.is_binary) == (False, True)
    assert binary.data == (b'}1:"a"{' if isinstance(decoder, Reversed) else b'{"a":1}')
    await conn.disconnect()


@pytest.mark.parametrize("decoder", [None, "raw", Reversed()], ids=["json", "raw", "custom"])
async def test_manager_response_says_text_or_binary(
    echo_server: ScriptedServer, session: aiohttp.ClientSession, decoder: Any
) -> None:
    manager = WebSocketManager(WebSocketConnection(session, decoder=decoder))
    await manager.connect(echo_server.url)
    await manager.send(WebSocketPlainTextRequest(payload="hi"))
    await manager.send(WebSocketBinaryRequest(payload=b"hi"))
    got = [response(await asyncio.wait_for(manager.receive(), 2)) for _ in range(2)]
    assert [r.is_binary for r in got] == [False, True]
    if decoder == "raw":
        assert [r.data for r in got] == ["hi", b"hi"]
    await manager.disconnect()


def read_close(server: ScriptedServer) -> list[tuple[Any, Any, Any]]:
    """From now on each new peer's first message (the client's close frame) is recorded."""
    closes: list[tuple[Any, Any, Any]] = []

    async def first_message(peer: Peer) -> None:
        msg = await peer.ws.receive()
        closes.append((msg.type, msg.data, msg.extra))

    server.on_peer = first_message
    return closes


async def wait_for(closes: list[Any]) -> list[Any]:
    await wait_until(lambda: closes, "a close")
    return closes


async def test_connection_disconnect_sends_the_code_and_reason(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    closes = read_close(server)
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    await server.wait_peer()
    await conn.disconnect(code=4001, reason="maintenance \u00e9")
    assert await wait_for(closes) == [(aiohttp.WSMsgType.CLOSE, 4001, "maintenance \u00e9")]
    assert not conn.connected


async def test_manager_disconnect_sends_the_code_and_reason(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    closes = read_close(server)
    manager = WebSocketManager(WebSocketConnection(session))
    await manager.connect(server.url)
    await server.wait_peer()
    await manager.disconnect(code=1001, reason="going away")
    assert await wait_for(closes) == [(aiohttp.WSMsgType.CLOSE, 1001, "going away")]
    assert not manager.connected and await manager.receive() is None
    assert server.attempts == 1  # closing with a code is not a failure: nothing reconnects


async def test_disconnect_sends_1000_by_default(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    closes = read_close(server)
    manager = WebSocketManager(WebSocketConnection(session))
    await manager.connect(server.url)
    await server.wait_peer()
    await manager.disconnect()
    assert await wait_for(closes) == [(aiohttp.WSMsgType.CLOSE, 1000, "")]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1005, ""), (1006, ""), (1015, ""), (999, ""), (5000, ""), (True, ""), (1000, "x" * 124)],
)
async def test_disconnect_refuses_what_may_not_be_sent_and_stays_open(
    echo_server: ScriptedServer, session: aiohttp.ClientSession, code: Any, reason: str
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(echo_server.url)
    with pytest.raises(ConfigurationError):
        await conn.disconnect(code=code, reason=reason)
    assert conn.connected
    manager = WebSocketManager(WebSocketConnection(session))
    await manager.connect(echo_server.url)
    with pytest.raises(ConfigurationError):
        await manager.disconnect(code=code, reason=reason)
    assert manager.connected
    await manager.send(WebSocketPlainTextRequest(payload="still here"))
    assert response(await asyncio.wait_for(manager.receive(), 2)).data == "still here"
    await manager.disconnect()
    await conn.disconnect()
