"""The loopback demo server, driven by plain aiohttp clients."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from networkpype.demo import DemoServer, DemoServerThread
from tests.timing import wait_until

TIMEOUT = 2.0  # seconds: generous upper bound for any single frame on loopback


@pytest.fixture
async def server() -> AsyncIterator[DemoServer]:
    async with DemoServer(rate=200.0) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def recv_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    data = msgspec.json.decode(msg.data)
    assert isinstance(data, dict)
    return data


async def test_url_is_loopback_ephemeral(server: DemoServer) -> None:
    assert server.port > 0
    assert server.url == f"ws://127.0.0.1:{server.port}/ws"
    assert server.stream_url("book", 5).endswith(f":{server.port}/stream?kind=book&count=5")


def test_rejects_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DemoServer("0.0.0.0")


async def test_subscribe_ack_then_per_topic_sequences(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(server.url) as ws:
        topics = ["btcusdt@trade", "ethusdt@trade", "btcusdt@depth"]
        await ws.send_str(
            msgspec.json.encode({"method": "SUBSCRIBE", "params": topics, "id": 7}).decode()
        )
        assert await recv_json(ws) == {"result": None, "id": 7}
        seqs: dict[str, list[int]] = {t: [] for t in topics}
        sizes: dict[str, int] = {}
        while min(len(s) for s in seqs.values()) < 5:
            event = await recv_json(ws)
            stream = event["stream"]
            assert isinstance(stream, str)
            seq = event["seq"]
            assert isinstance(seq, int)
            seqs[stream].append(seq)
            sizes[stream] = len(msgspec.json.encode(event))
        for topic, got in seqs.items():
            assert got == list(range(1, len(got) + 1)), topic
        assert 100 <= sizes["btcusdt@trade"] <= 200
        assert 1000 <= sizes["btcusdt@depth"] <= 1300
    assert server.connections_accepted == 1


async def test_trade_event_shape(server: DemoServer, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(server.url) as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["solusdt@trade"]}')
        assert await recv_json(ws) == {"result": None, "id": None}  # no id: "id": null
        event = await recv_json(ws)
    assert event["e"] == "trade"
    assert event["s"] == "SOLUSDT"
    assert event["seq"] == 1
    assert {"E", "t", "p", "q", "T", "m"} <= event.keys()
    assert float(str(event["p"])) > 0


async def test_unsubscribe_stops_the_stream(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(server.url) as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}')
        assert await recv_json(ws) == {"result": None, "id": 1}
        assert (await recv_json(ws))["seq"] == 1
        await ws.send_str('{"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}')
        while (reply := await recv_json(ws)).get("e") == "trade":
            pass  # events sent before the unsubscribe arrived
        assert reply == {"result": None, "id": 2}
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.1)  # 20 periods at 200/s: nothing follows the ack
        await ws.send_str('{"method": "LIST_SUBSCRIPTIONS", "id": 3}')
        assert await recv_json(ws) == {"result": [], "id": 3}


async def test_bad_subscribe_gets_an_error(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(server.url) as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@nope"], "id": 4}')
        reply = await recv_json(ws)
    assert reply["id"] == 4
    error = reply["error"]
    assert isinstance(error, dict)
    assert error["code"] == 2


async def test_ping_pong_echo_and_binary(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(server.url) as ws:
        await ws.send_str("PING")
        assert (await ws.receive(timeout=TIMEOUT)).data == "PONG"
        for text in ["hello", '{"type": "ping"}', '{"method": "OTHER",  "id": 1}', " PING"]:
            await ws.send_str(text)
            msg = await ws.receive(timeout=TIMEOUT)
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.TEXT, text)
        await ws.send_bytes(b"\x00\xffbin")
        msg = await ws.receive(timeout=TIMEOUT)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.BINARY, b"\x00\xffbin")
    await wait_until(lambda: server.statistics().connections_open == 0, "the close noticed")
    stats = server.statistics()
    assert stats.messages_received == {1: 6}
    assert server.messages_received == {1: 6}
    assert stats.connections_open == 0


async def test_stream_endpoint_sends_count_then_closes_1000(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    for kind, low, high in (("trade", 100, 200), ("book", 1000, 1300)):
        async with session.ws_connect(server.stream_url(kind, 300)) as ws:  # type: ignore[arg-type]
            seqs = []
            async for msg in ws:
                assert msg.type is aiohttp.WSMsgType.TEXT
                assert low <= len(msg.data) <= high
                seqs.append(msgspec.json.decode(msg.data)["seq"])
        assert seqs == list(range(1, 301))
        assert ws.close_code == 1000


async def test_stream_endpoint_rejects_bad_query(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    url = server.url.replace("/ws", "/stream?kind=xml&count=1")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(url)
    assert info.value.status == 400


async def test_handshake_headers_captured(
    server: DemoServer, session: aiohttp.ClientSession
) -> None:
    async with session.ws_connect(server.url, headers={"X-Api-Key": "k-123"}):
        pass
    assert server.last_handshake_headers["X-Api-Key"] == "k-123"
    assert server.statistics().connections[0].handshake_headers["X-Api-Key"] == "k-123"


async def test_stop_closes_clients_with_1001(session: aiohttp.ClientSession) -> None:
    server = DemoServer()
    await server.start()
    ws = await session.ws_connect(server.url)
    msg, _ = await asyncio.gather(ws.receive(timeout=TIMEOUT), server.stop())
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1001
    await ws.close()


async def test_lifetime_bounds_the_server(session: aiohttp.ClientSession) -> None:
    async with DemoServer(rate=100.0, lifetime=0.2) as server:
        async with session.ws_connect(server.url) as ws:
            await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}')
            async for _ in ws:
                pass
            assert ws.close_code == 1001
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.url)
        assert info.value.status == 503


async def test_max_messages_bounds_each_stream(session: aiohttp.ClientSession) -> None:
    async with (
        DemoServer(rate=None, max_messages=3) as server,
        session.ws_connect(server.url) as ws,
    ):
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}')
        await recv_json(ws)
        assert [(await recv_json(ws))["seq"] for _ in range(3)] == [1, 2, 3]
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.1)


def test_thread_mode_for_sync_code() -> None:
    async def client(url: str) -> str:
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str("PING")
            return str((await ws.receive(timeout=TIMEOUT)).data)

    with DemoServerThread() as server:
        assert asyncio.run(client(server.url)) == "PONG"
        assert server.statistics().connections_accepted == 1


def test_standalone_runs_for_its_duration() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "networkpype.demo.server", "--port", "0", "--duration", "0.3"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo server listening on ws://127.0.0.1:" in proc.stdout
    assert "demo server stopped: 0 connections" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr


def test_standalone_bad_argument_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "networkpype.demo.server", "--duration", "-1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
