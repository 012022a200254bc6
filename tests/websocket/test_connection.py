"""WebSocketConnection against a real aiohttp server on 127.0.0.1: the seed's contract."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from networkpype.protocol.errors import (
    AlreadyConnectedError,
    ConnectionClosedError,
    HandshakeError,
    HandshakeRejectedError,
    InvalidURLError,
    MessageTimeoutError,
    MessageTooBigError,
    NotConnectedError,
)
from networkpype.testing.scripted import ScriptedServer
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.request import (
    WebSocketBinaryRequest,
    WebSocketJSONRequest,
    WebSocketPlainTextRequest,
)


async def test_json_text_binary_round_trip(
    echo_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(aiohttp_client_session=session)
    await conn.connect(ws_url=echo_server.url, ping_timeout=10, message_timeout=5.0)
    assert conn.connected
    await conn.send(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "n": [1, 2]}))
    await conn.send(WebSocketPlainTextRequest(payload="PING"))
    await conn.send(WebSocketBinaryRequest(payload=b"\x00\x01"))
    first, second, third = [await conn.receive() for _ in range(3)]
    assert first is not None and first.data == {"method": "SUBSCRIBE", "n": [1, 2]}
    assert second is not None and second.data == "PING"
    assert third is not None and third.data == b"\x00\x01"
    peer = await echo_server.wait_peer()
    assert peer.received[0][1] is aiohttp.WSMsgType.TEXT
    assert peer.received[2][1] is aiohttp.WSMsgType.BINARY
    await conn.disconnect()


async def test_ws_headers_arrive_at_server(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url, ws_headers={"X-Api-Key": "k1"})
    peer = await server.wait_peer()
    assert peer.headers["X-Api-Key"] == "k1"
    await conn.disconnect()


async def test_ping_frame_answered_and_discarded(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    # The server does not auto-answer, so our pong arrives as a frame it records.
    server.autoping = False
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await peer.ws.ping(b"hb")
    await peer.ws.pong(b"unsolicited")
    await peer.ws.send_str("after")
    response = await conn.receive()
    assert response is not None and response.data == "after"  # ping and pong discarded
    frames = await peer.wait_frames(1)
    assert peer.received[0][1] is aiohttp.WSMsgType.PONG and frames[0] == b"hb"
    await conn.disconnect()


async def test_client_ping_reaches_server(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    server.autoping = False
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await conn.ping()
    await peer.wait_frames(1)
    assert peer.received[0][1] is aiohttp.WSMsgType.PING
    await conn.disconnect()


async def test_close_frame_sets_disconnected_and_raises_connection_error(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await peer.ws.send_str("last")
    await peer.ws.close(code=4001, message=b"bye")
    response = await conn.receive()
    assert response is not None and response.data == "last"
    with pytest.raises(ConnectionError) as info:
        await conn.receive()
    assert isinstance(info.value, ConnectionClosedError)
    assert info.value.code == 4001 and info.value.reason == "bye"
    assert not conn.connected


async def test_message_timeout_raises_timeout_error_and_keeps_connection(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url, message_timeout=0.05)
    with pytest.raises(TimeoutError) as info:
        await conn.receive()
    assert isinstance(info.value, MessageTimeoutError)
    assert conn.connected
    peer = await server.wait_peer()
    await peer.ws.send_str("late")
    response = await conn.receive()
    assert response is not None and response.data == "late"
    await conn.disconnect()


async def test_auto_ping_lets_aiohttp_answer(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    server.autoping = False
    conn = WebSocketConnection(session)
    await conn.connect(server.url, auto_ping=True)
    peer = await server.wait_peer()
    await peer.ws.ping(b"x")
    await peer.ws.send_str("data")
    response = await conn.receive()
    assert response is not None and response.data == "data"
    frames = await peer.wait_frames(1)
    assert peer.received[0][1] is aiohttp.WSMsgType.PONG and frames[0] == b"x"
    await conn.disconnect()


async def test_last_recv_time_is_unix_time_of_last_data_frame(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    assert conn.last_recv_time == 0.0
    await conn.connect(server.url)
    peer = await server.wait_peer()
    before = time.time()
    await peer.ws.send_str("{}")
    await conn.receive()
    after = time.time()
    assert before <= conn.last_recv_time <= after
    stamp = conn.last_recv_time
    await peer.ws.ping()
    await peer.ws.send_str("x")
    await conn.receive()
    assert conn.last_recv_time >= stamp
    await conn.disconnect()


async def test_disconnect_is_idempotent_and_state_errors(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    with pytest.raises(NotConnectedError):
        await conn.send(WebSocketPlainTextRequest(payload="x"))
    await conn.disconnect()
    await conn.connect(server.url)
    with pytest.raises(AlreadyConnectedError):
        await conn.connect(server.url)
    await conn.disconnect()
    await conn.disconnect()
    assert not conn.connected
    with pytest.raises(ConnectionError):
        await conn.send(WebSocketPlainTextRequest(payload="x"))
    peer = await server.wait_peer()
    await asyncio.wait_for(peer.closed.wait(), 2)


@pytest.mark.parametrize(
    ("status", "error"), [(403, HandshakeRejectedError), (503, HandshakeError)]
)
async def test_handshake_status_is_a_clear_error(
    server: ScriptedServer, session: aiohttp.ClientSession, status: int, error: type
) -> None:
    server.status = status
    server.extra_headers = {"Retry-After": "7"}
    conn = WebSocketConnection(session)
    with pytest.raises(error) as info:
        await conn.connect(server.url)
    assert isinstance(info.value, ConnectionError)
    assert str(status) in str(info.value)
    if status == 503:
        assert isinstance(info.value, HandshakeError)
        assert info.value.retry_after == 7.0
    assert not conn.connected


async def test_bad_url_is_invalid_url_error(session: aiohttp.ClientSession) -> None:
    conn = WebSocketConnection(session)
    with pytest.raises(InvalidURLError):
        await conn.connect("ftp://127.0.0.1/x")
    with pytest.raises(InvalidURLError):
        await conn.connect("not a url")


async def test_oversized_message_names_size_and_limit(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session, max_msg_size=1000)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await peer.ws.send_str("x" * 5000)
    with pytest.raises(MessageTooBigError) as info:
        await conn.receive()
    assert info.value.limit == 1000 and info.value.size == 5000
    assert "5000" in str(info.value) and "1000" in str(info.value)
    assert not conn.connected


async def test_raw_and_typed_decoders(
    echo_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    import msgspec

    class Trade(msgspec.Struct):
        p: str
        q: str

    raw = WebSocketConnection(session, decoder="raw")
    await raw.connect(echo_server.url)
    await raw.send(WebSocketPlainTextRequest(payload='{"a":  1}'))
    response = await raw.receive()
    assert response is not None and response.data == '{"a":  1}'
    await raw.disconnect()

    typed = WebSocketConnection(session, decoder=Trade)
    await typed.connect(echo_server.url)
    await typed.send(WebSocketJSONRequest(payload={"p": "1.5", "q": "2"}))
    await typed.send(WebSocketJSONRequest(payload={"result": None}))
    first, second = await typed.receive(), await typed.receive()
    assert first is not None and first.data == Trade(p="1.5", q="2")
    assert second is not None and second.data == '{"result":null}'  # not dropped
    await typed.disconnect()


async def test_ping_timeout_closes_a_connection_whose_pongs_never_come(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    # The seed's ping_timeout drives aiohttp's heartbeat on a standalone connection.
    server.autoping = False  # the server neither answers pings nor sends anything
    conn = WebSocketConnection(session)
    await conn.connect(server.url, ping_timeout=0.1)
    peer = await server.wait_peer()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(conn.receive(), 2)
    assert not conn.connected
    assert any(t is aiohttp.WSMsgType.PING for _, t, _ in peer.received)
