"""``connect(retry=True)``: a program started before its venue (issue 9, item 7).

The first connection's failures go through the restart policy; the default stays the seed's:
raise at once.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import (
    ConnectAbortedError,
    ConnectionFailedError,
    GaveUpError,
    HandshakeRejectedError,
)
from networkpype.protocol.events import Connected
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing.scripted import ScriptedServer
from networkpype.testing.stall import stall_gate
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.request import WebSocketJSONRequest
from tests.timing import MS


@pytest.fixture
def factory() -> ConnectionManagersFactory:
    return ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 100, 1.0)]))


def free_port() -> int:
    """A port nothing listens on (for a moment, nobody will take it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connect_with_retry_waits_for_a_server_that_starts_later(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    """The bot starts first; the venue's port opens 0.3 s later. Default policy."""
    ws = await factory.get_ws_manager()
    port = free_port()
    connect = asyncio.create_task(ws.connect(f"ws://127.0.0.1:{port}/ws", retry=True))
    await asyncio.sleep(300 * MS)
    assert not connect.done()  # refused so far, and retried
    # The venue comes up on that port (a gate forwarding to the loopback server).
    async with stall_gate(target_port=server.port, port=port):
        async with asyncio.timeout(5):  # the default backoff: the next try within ~1 s
            await connect
        assert ws.connected
        first = await ws.receive(events=True)
        assert isinstance(first, Connected)  # the first connection, not a reconnection
        await ws.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "id": 1}))
        peer = await server.wait_peer()
        assert len(await peer.wait_frames(1)) == 1
        await peer.ws.send_str('{"data": 1}')
        message = await asyncio.wait_for(ws.receive(), 5)
        assert message is not None and message.data == {"data": 1}
        await ws.disconnect()
    await factory.close()


async def test_connect_with_retry_raises_a_fatal_error_at_once(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    server.status = 401
    ws = await factory.get_ws_manager()
    started = time.monotonic()
    with pytest.raises(HandshakeRejectedError):
        await ws.connect(server.url, retry=True)
    assert time.monotonic() - started < 1.0
    assert server.attempts == 1
    assert ws.actor_ref is None
    await factory.close()


async def test_connect_with_retry_gives_up_past_the_restart_intensity(
    factory: ConnectionManagersFactory,
) -> None:
    policy = RestartPolicy(max_restarts=2, backoff=BackoffPolicy(initial=0.01, cap=0.02))
    ws = await factory.get_ws_manager(restart_policy=policy)
    with pytest.raises(GaveUpError, match="max_restarts=2") as raised:
        await ws.connect(f"ws://127.0.0.1:{free_port()}/ws", retry=True)
    assert isinstance(raised.value.__cause__, ConnectionFailedError)
    assert ws.actor_ref is None
    await factory.close()


async def test_connect_without_retry_raises_at_once(
    factory: ConnectionManagersFactory,
) -> None:
    ws = await factory.get_ws_manager()
    with pytest.raises(ConnectionFailedError):
        await ws.connect(f"ws://127.0.0.1:{free_port()}/ws")
    await factory.close()


async def test_disconnect_while_connect_retries_is_prompt(
    factory: ConnectionManagersFactory,
) -> None:
    ws = await factory.get_ws_manager()
    connect = asyncio.create_task(ws.connect(f"ws://127.0.0.1:{free_port()}/ws", retry=True))
    await asyncio.sleep(300 * MS)  # between attempts (the default backoff)
    started = time.monotonic()
    await ws.disconnect()
    assert time.monotonic() - started < 1000 * MS
    with pytest.raises(ConnectAbortedError):
        await connect
    await factory.close()


async def test_disconnect_while_a_retried_connect_hangs_in_its_handshake(
    factory: ConnectionManagersFactory,
) -> None:
    ws = await factory.get_ws_manager()
    async with stall_gate() as gate:
        connect = asyncio.create_task(ws.connect(gate.url, retry=True))
        await gate.wait_held()
        started = time.monotonic()
        await ws.disconnect()
        assert time.monotonic() - started < 1.0
        await gate.wait_all_closed(1.0)
        with pytest.raises(ConnectAbortedError):
            await connect
    await factory.close()
