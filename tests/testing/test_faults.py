"""FaultProxy against real sockets: an aiohttp echo server and aiohttp/raw clients on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from networkpype.protocol.errors import ConfigurationError, UsageError
from networkpype.testing import (
    ChaosSchedule,
    FaultProxy,
    Heal,
    Latency,
    ProxyState,
    Stall,
)
from networkpype.testing.scripted import ScriptedServer
from tests.timing import MS, wait_until

UNIT = 50 * MS  # every wait in this module is a small multiple of it
pytestmark = pytest.mark.timeout(10)
QUICK_CLOSE = aiohttp.ClientWSTimeout(ws_close=UNIT)
CLOSED_TYPES = (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR)


@pytest.fixture
async def proxy(echo_server: ScriptedServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(target_port=echo_server.port) as p:
        yield p


async def echo(ws: aiohttp.ClientWebSocketResponse, text: str, timeout: float = 1.0) -> str:
    await ws.send_str(text)
    async with asyncio.timeout(timeout):
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return str(msg.data)


async def http_get_through(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw keep-alive connection through the proxy, proven forwarding by one request (the
    server has no page at /: its 404 came through)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(1):
        await reader.readuntil(b"404: Not Found")
    return reader, writer


async def test_echo_passes_through(proxy: FaultProxy, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        assert await echo(ws, "ping") == "ping"
        await ws.send_bytes(b"\x00" * 100_000)
        msg = await ws.receive(timeout=1)
        assert msg.data == b"\x00" * 100_000
        [info] = proxy.connections
        assert info.conn_id == 1
        assert info.bytes_to_target > 100_000
        assert info.bytes_to_client > 100_000
    stats = proxy.statistics()
    assert stats.connections_accepted == 1
    assert stats.bytes_dropped == 0
    assert proxy.url_for("/ws") == f"ws://127.0.0.1:{proxy.port}/ws"


async def test_reset_all_client_sees_error_quickly(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        await echo(ws, "before")
        assert proxy.reset_all() == 1
        msg = await ws.receive(timeout=1)
        assert msg.type in CLOSED_TYPES
        assert ws.closed


async def test_reset_is_an_rst_not_a_fin(proxy: FaultProxy) -> None:
    reader, writer = await http_get_through(proxy)
    try:
        proxy.reset_all()
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(1):
                await reader.read()
    finally:
        writer.close()


async def test_reset_one_connection_leaves_the_others(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    async with (
        session.ws_connect(proxy.url_for("/ws")) as first,
        session.ws_connect(proxy.url_for("/ws")) as second,
    ):
        await echo(first, "a")
        await echo(second, "b")
        assert [c.conn_id for c in proxy.connections] == [1, 2]
        assert proxy.reset(1)
        assert (await first.receive(timeout=1)).type in CLOSED_TYPES
        assert await echo(second, "still here") == "still here"
        assert not proxy.reset(99)
        assert not proxy.latency(UNIT, conn_id=99)


async def test_blackhole_drops_bytes_and_keeps_the_socket_open(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        await echo(ws, "before")
        proxy.blackhole()
        await ws.send_str("lost")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=3 * UNIT)
        assert not ws.closed
        assert proxy.statistics().connections_active == 1
        assert proxy.statistics().bytes_dropped > 0
        proxy.blackhole(on=False)
        assert await echo(ws, "after") == "after"


async def test_stall_holds_bytes_until_released(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        await echo(ws, "before")
        proxy.stall(conn_id=1)
        await ws.send_str("held")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=2 * UNIT)
        assert proxy.connections[0].stalled
        proxy.stall(on=False, conn_id=1)
        msg = await ws.receive(timeout=1)
        assert msg.data == "held"


async def test_latency_delays_each_direction(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        await echo(ws, "warm up")
        proxy.latency(UNIT)
        started = time.monotonic()
        await echo(ws, "slow")
        assert time.monotonic() - started >= 2 * UNIT - 0.001  # one UNIT each way
        assert proxy.connections[0].latency_seconds == UNIT


async def test_bandwidth_limits_each_direction(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    size, rate = 10_000, 200_000.0  # 50 ms each way at the limit
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        await echo(ws, "warm up")
        proxy.bandwidth(rate)
        started = time.monotonic()
        await ws.send_bytes(bytes(size))
        msg = await ws.receive(timeout=1)
        elapsed = time.monotonic() - started
        assert len(msg.data) == size
        assert elapsed >= 0.9 * 2 * size / rate
        proxy.bandwidth(None)
        assert proxy.connections[0].bytes_per_second is None


async def test_refuse_new_then_lifted(proxy: FaultProxy, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(proxy.url_for("/ws")) as open_before:
        proxy.refuse_new()
        with pytest.raises(aiohttp.ClientError):
            await session.ws_connect(proxy.url_for("/ws"))
        assert await echo(open_before, "unaffected") == "unaffected"
        proxy.refuse_new(on=False)
        async with session.ws_connect(proxy.url_for("/ws")) as ws:
            assert await echo(ws, "back") == "back"
    assert proxy.statistics().connections_refused >= 1  # aiohttp may retry once


async def test_refuse_new_for_a_period(proxy: FaultProxy) -> None:
    proxy.refuse_new(2 * UNIT)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(1):
            await reader.read()
    writer.close()
    await asyncio.sleep(2 * UNIT)
    _, writer = await http_get_through(proxy)
    writer.close()


async def test_unreachable_target_resets_the_client() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with FaultProxy(target_port=dead_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(1):
                await reader.read()
        writer.close()


def _proxy_sockets(port: int, target_port: int) -> list[tuple[int, int]]:
    """(local, remote) ports of this process's TCP sockets on the proxy's side.

    That is the listener and accepted sockets (local port == ``port``) and the upstream
    sockets (remote port == ``target_port``); not the clients' or the server's sockets.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
                if fields[9] in inodes and (local == port or remote == target_port):
                    found.append((local, remote))
    return found


async def test_close_leaves_no_task_or_socket(echo_server: ScriptedServer) -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    tasks_before = asyncio.all_tasks()
    async with aiohttp.ClientSession() as session:
        proxy = FaultProxy(target_port=echo_server.port)
        await proxy.start()
        busy = await session.ws_connect(proxy.url_for("/ws"))
        held = await session.ws_connect(proxy.url_for("/ws"))
        proxy.latency(10.0, conn_id=1)
        proxy.stall(conn_id=2)
        with contextlib.suppress(TimeoutError):  # more than the proxy may buffer
            await asyncio.wait_for(busy.send_bytes(bytes(2_000_000)), UNIT)
        await held.send_str("held")
        proxy.start_playing(ChaosSchedule(1, [(10.0, Heal())]))
        await asyncio.sleep(UNIT)
        assert _proxy_sockets(proxy.port, echo_server.port)
        async with asyncio.timeout(1):  # not the 10 s of latency
            await proxy.close()
        assert proxy.state is ProxyState.CLOSED
        assert _proxy_sockets(proxy.port, echo_server.port) == []
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("FaultProxy")]
        assert proxy.connections == []
        await busy.close()
        await held.close()
    await wait_until(  # the client's and the server's sockets close on their own
        lambda: (
            set(os.listdir("/proc/self/fd")) == fds_before
            and not asyncio.all_tasks() - tasks_before
        ),
        "no socket or task left",
        timeout=1000 * MS,
    )


async def test_seeded_chaos_schedule_ends_healed(
    proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    schedule = proxy.chaos_schedule(duration_seconds=0.3, mean_gap_seconds=0.03)
    assert schedule == ChaosSchedule(proxy.seed, duration_seconds=0.3, mean_gap_seconds=0.03)
    player = proxy.start_playing(schedule)
    while not player.done():  # a client that keeps reconnecting through the chaos
        try:
            async with (
                asyncio.timeout(4 * UNIT),
                session.ws_connect(proxy.url_for("/ws"), timeout=QUICK_CLOSE) as ws,
            ):
                await ws.send_str("x")
                await ws.receive()
        except (aiohttp.ClientError, TimeoutError):
            await asyncio.sleep(10 * MS)
    await player
    async with session.ws_connect(proxy.url_for("/ws")) as ws:
        assert await echo(ws, "healed") == "healed", schedule


async def test_apply_and_play_explicit_events(proxy: FaultProxy) -> None:
    await proxy.play(ChaosSchedule(5, [(UNIT, Stall()), (0.0, Latency(0.5))]))
    _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await wait_until(lambda: proxy.connections, "the proxy accepted it", timeout=1000 * MS)
    [info] = proxy.connections
    assert (info.latency_seconds, info.stalled) == (0.5, True)
    proxy.apply(Heal())
    [info] = proxy.connections
    assert (info.latency_seconds, info.stalled) == (0.0, False)
    writer.close()


@pytest.mark.parametrize(
    ("target", "listen"),
    [
        ("10.0.0.1", "127.0.0.1"),
        ("127.0.0.1", "0.0.0.0"),
        ("example.com", "127.0.0.1"),
        ("127.0.0.1", "::"),
        ("192.168.1.1", "::1"),
    ],
)
def test_refuses_anything_but_loopback(target: str, listen: str) -> None:
    with pytest.raises(ValueError, match=r"not loopback|not an IP address"):
        FaultProxy(target, 8080, listen_host=listen)


def test_accepts_loopback_and_checks_arguments() -> None:
    assert FaultProxy("127.0.0.2", 1, listen_host="::1").url_for("/x") == "ws://[::1]:0/x"
    assert FaultProxy("localhost", 1).target_host == "127.0.0.1"
    with pytest.raises(ConfigurationError):
        FaultProxy(target_port=0)
    proxy = FaultProxy(target_port=1, seed=42)
    assert proxy.seed == 42


async def test_lifecycle_and_argument_errors(proxy: FaultProxy) -> None:
    with pytest.raises(UsageError, match="cannot start while serving"):
        await proxy.start()
    with pytest.raises(ConfigurationError):
        proxy.latency(-1)
    with pytest.raises(ConfigurationError):
        proxy.bandwidth(0)
    await proxy.close()
    await proxy.close()  # idempotent
    with pytest.raises(UsageError):
        proxy.start_playing(ChaosSchedule(1, []))
