"""permessage-deflate (RFC 7692): the client offers with ``compress=``, the server decides
(issue 10, item 4). Real loopback servers: aiohttp's, which accepts an offer by default,
and one that declines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from networkpype.demo import DemoServer
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ConfigurationError
from networkpype.protocol.events import Reconnected
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing.scripted import ScriptedServer, scripted_server
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketBinaryRequest, WebSocketPlainTextRequest
from tests.received import response

EXTENSIONS = "Sec-WebSocket-Extensions"
BIG = json.dumps({"bids": [[f"{27000 + i}.5", "0.001"] for i in range(2000)]})  # ~60 KB


@pytest.fixture
async def declining_server() -> AsyncIterator[ScriptedServer]:
    """An echo server that answers every offer of compression with plain frames."""
    async with scripted_server(echo=True, compress=False) as server:
        yield server


async def test_connection_is_plain_by_default(
    echo_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(echo_server.url)
    peer = await echo_server.wait_peer()
    assert EXTENSIONS not in peer.headers and conn.compression == 0
    assert peer.ws.compress == 0
    await conn.disconnect()


@pytest.mark.parametrize(("compress", "bits"), [(True, 15), (15, 15), (12, 12), (9, 9)])
async def test_connection_offers_and_the_server_accepts(
    echo_server: ScriptedServer, session: aiohttp.ClientSession, compress: Any, bits: int
) -> None:
    conn = WebSocketConnection(session, decoder="raw")
    await conn.connect(echo_server.url, compress=compress)
    peer = await echo_server.wait_peer()
    assert "permessage-deflate" in peer.headers[EXTENSIONS]
    assert conn.compression == 15  # our frames' window: the server asked for no less
    assert peer.ws.compress == bits  # the server's: at most what we asked for
    await conn.send_frame(BIG)  # compressed both ways
    await conn.send_frame(BIG.encode())
    text, binary = await conn.receive(), await conn.receive()
    assert text is not None and binary is not None
    assert (text.data, text.is_binary) == (BIG, False)
    assert (binary.data, binary.is_binary) == (BIG.encode(), True)
    await conn.disconnect()
    assert conn.compression == 0


async def test_a_server_that_declines_gets_plain_frames(
    declining_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session, decoder="raw")
    await conn.connect(declining_server.url, compress=True)
    assert conn.compression == 0
    await conn.send_frame(BIG)
    assert (await conn.receive()).data == BIG  # type: ignore[union-attr]
    await conn.disconnect()


@pytest.mark.parametrize("compress", [8, 16, -1, 1, "yes", 15.0, None])
async def test_a_bad_compress_is_refused_before_dialling(
    echo_server: ScriptedServer, session: aiohttp.ClientSession, compress: Any
) -> None:
    with pytest.raises(ConfigurationError, match="compress"):
        await WebSocketConnection(session).connect(echo_server.url, compress=compress)
    manager = WebSocketManager(WebSocketConnection(session))
    with pytest.raises(ConfigurationError, match="compress"):
        await manager.connect(echo_server.url, compress=compress)
    assert echo_server.attempts == 0


async def test_manager_offers_again_at_every_reconnection(
    echo_server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    fast = RestartPolicy(backoff=BackoffPolicy(initial=0.01, cap=0.05))
    manager = WebSocketManager(WebSocketConnection(session, decoder="raw"), restart_policy=fast)
    await manager.connect(echo_server.url, compress=True)
    first = await echo_server.wait_peer()
    assert first.ws.compress == 15
    first.abort()
    async with asyncio.timeout(5):
        while not isinstance(await manager.receive(events=True), Reconnected):
            pass
    second = await echo_server.wait_peer(1)
    assert "permessage-deflate" in second.headers[EXTENSIONS] and second.ws.compress == 15
    await manager.send(WebSocketPlainTextRequest(payload=BIG))
    await manager.send(WebSocketBinaryRequest(payload=b"\x00" * 10_000))
    got = [response(await asyncio.wait_for(manager.receive(), 2)) for _ in range(2)]
    assert [(r.data, r.is_binary) for r in got] == [(BIG, False), (b"\x00" * 10_000, True)]
    await manager.disconnect()


async def test_sharded_manager_offers_on_every_shard() -> None:
    async with DemoServer(rate=50.0) as server:
        factory = ConnectionManagersFactory(
            throttler=AsyncThrottler([RateLimit("default", 100, 1.0)])
        )
        try:
            sharded = await factory.get_sharded_ws_manager(
                codec=BinanceCodec(), max_topics_per_connection=1
            )
            await sharded.connect(server.url, compress=True)
            result = await sharded.subscribe_topics(["btcusdt@trade", "ethusdt@trade"])
            assert not result.rejected
            seen: set[str] = set()
            async with asyncio.timeout(5):
                async for message in sharded.iter_messages():
                    seen.add(message.data["stream"])
                    if len(seen) == 2:
                        break
            stats = server.statistics()
            assert stats.connections_accepted == 2
            offers = [c.handshake_headers.get(EXTENSIONS, "") for c in stats.connections]
            assert all("permessage-deflate" in offer for offer in offers), offers
        finally:
            await factory.close()
