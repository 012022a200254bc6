"""A token in the URL or in the headers appears in no log line, event or exception, for every
way a connection fails on loopback (issue 9, item 9)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import (
    AlreadyConnectedError,
    ConnectionClosedError,
    ConnectionFailedError,
    GaveUpError,
    HandshakeError,
    HandshakeRejectedError,
    InvalidURLError,
    MessageTimeoutError,
    NetworkPypeError,
)
from networkpype.protocol.events import Connected, Disconnected, Reconnected
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing.scripted import ScriptedServer
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.connection import WebSocketConnection, check_ws_url
from networkpype.websocket.manager import WebSocketManager
from tests.leaks import (
    CREDENTIALS,
    assert_hidden,
    capture_everything,
    exposed,
    logged,
    secret_url,
)

FAST = RestartPolicy(backoff=BackoffPolicy(initial=0.01, cap=0.05), max_restarts=5, within=60.0)


@pytest.fixture(params=sorted(CREDENTIALS))
def credentials(request: pytest.FixtureRequest) -> tuple[bool, dict[str, str]]:
    """(user-info in the URL, request headers)."""
    return CREDENTIALS[request.param]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def connect_failure(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> BaseException:
    conn = WebSocketConnection(session)
    with pytest.raises(NetworkPypeError) as info:
        await conn.connect(url, ws_headers=headers)
    return info.value


@pytest.mark.parametrize(("status", "kind"), [(401, HandshakeRejectedError), (503, HandshakeError)])
async def test_refused_handshake_shows_status_not_secrets(
    status: int,
    kind: type[Exception],
    credentials: tuple[bool, dict[str, str]],
    server: ScriptedServer,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_everything(caplog)
    user_info, headers = credentials
    server.status = status
    server.extra_headers = {"Retry-After": "1"}
    error = await connect_failure(session, secret_url(server.port, user_info=user_info), headers)
    assert type(error) is kind
    assert getattr(error, "status", None) == status
    text = exposed(error)
    assert f"127.0.0.1:{server.port}/ws?listenKey=***&x=***" in str(error)
    assert f"HTTP {status}" in str(error)
    # The cause still says what aiohttp saw: its type and status, with a redacted URL.
    cause = error.__cause__
    assert isinstance(cause, aiohttp.WSServerHandshakeError) and cause.status == status
    assert not cause.request_info.headers
    if isinstance(error, HandshakeError):  # only the response's headers
        assert dict(error.headers).get("Retry-After") == "1"
        assert "Authorization" not in error.headers and "X-MBX-APIKEY" not in error.headers
    assert_hidden(text)
    assert_hidden(logged(caplog))


async def test_refused_connection_shows_no_secrets(
    credentials: tuple[bool, dict[str, str]],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_everything(caplog)
    user_info, headers = credentials
    error = await connect_failure(session, secret_url(closed_port(), user_info=user_info), headers)
    assert isinstance(error, ConnectionFailedError)
    assert "listenKey=***" in str(error)
    assert_hidden(exposed(error))
    assert_hidden(logged(caplog))


@pytest.mark.parametrize("url", ["ftp://user:s3cr3t@h/?listenKey=TOPSECRET", "ws://user:s3cr3t@"])
async def test_invalid_url_shows_no_secrets(
    url: str, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)
    with pytest.raises(InvalidURLError) as info:
        check_ws_url(url)
    assert_hidden(exposed(info.value))
    error = await connect_failure(session, url)
    assert isinstance(error, InvalidURLError)
    assert_hidden(exposed(error))
    assert_hidden(logged(caplog))


async def test_open_connection_errors_and_logs_show_no_secrets(
    credentials: tuple[bool, dict[str, str]],
    server: ScriptedServer,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_everything(caplog)
    user_info, headers = credentials
    url = secret_url(server.port, user_info=user_info)
    conn = WebSocketConnection(session)
    await conn.connect(url, ws_headers=headers, message_timeout=0.01)
    assert conn.url == url  # kept for dialing
    errors: list[BaseException] = []
    with pytest.raises(AlreadyConnectedError) as already:
        await conn.connect(url, ws_headers=headers)
    errors.append(already.value)
    with pytest.raises(MessageTimeoutError) as timeout:
        await conn.receive()
    errors.append(timeout.value)
    peer = await server.wait_peer()
    await peer.ws.ping(b"are you there")
    await peer.ws.close(code=1011, message=b"restart")
    with pytest.raises(ConnectionClosedError) as closed:
        while True:
            await conn.receive()
    errors.append(closed.value)
    assert "listenKey=***" in str(closed.value)
    await conn.disconnect()
    for error in errors:
        assert_hidden(exposed(error))
    assert_hidden(logged(caplog))


async def events_until_gave_up(ws: WebSocketManager) -> tuple[list[Any], GaveUpError]:
    items: list[Any] = []
    with pytest.raises(GaveUpError) as info:
        async with asyncio.timeout(10):
            async for item in ws.iter_messages(events=True):
                items.append(item)
    return items, info.value


async def test_manager_events_and_give_up_show_no_secrets(
    credentials: tuple[bool, dict[str, str]],
    server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_everything(caplog)
    user_info, headers = credentials
    url = secret_url(server.port, user_info=user_info)
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 10, 1)]))
    try:
        ws = await factory.get_ws_manager(restart_policy=FAST)
        await ws.connect(url, ws_headers=headers, ping_interval=0.05, pong_timeout=0.2)
        first = await server.wait_peer(0)
        await first.ws.close(code=1011, message=b"restart")  # reconnected at once
        second = await server.wait_peer(1)
        server.autoping = False  # the third link never answers a ping: liveness ends it
        second.abort()
        await server.wait_peer(2)
        server.status_script = [503]  # the redials after it: a server error, retried,
        server.status = 401  # then a refusal: fatal, the supervisor gives up
        items, gave_up = await events_until_gave_up(ws)
        kinds = [type(i).__name__ for i in items]
        assert kinds[:2] == ["Connected", "Disconnected"], kinds
        assert "Reconnected" in kinds
        shown = [i.url for i in items if isinstance(i, Connected | Reconnected)]
        assert shown and all(u.endswith(f"{server.port}/ws?listenKey=***&x=***") for u in shown)
        assert any(isinstance(i, Disconnected) and "pong" in i.cause for i in items), items
        assert isinstance(gave_up.__cause__, HandshakeRejectedError)
        assert_hidden(repr(items))
        assert_hidden(exposed(gave_up))
        await ws.disconnect()
    finally:
        await factory.close()
    assert_hidden(logged(caplog))
