"""The exchange simulator, driven by plain aiohttp clients over loopback.

Times are scaled down: the venue's limits are the simulator's constructor arguments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from networkpype.demo import ExchangeSimulator, ExchangeSimulatorThread
from tests.timing import MS, wait_until

TIMEOUT = 2.0  # seconds: generous upper bound for any single frame on loopback
WS = aiohttp.WSMsgType


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def request(
    ws: aiohttp.ClientWebSocketResponse, method: str, *params: str, **kw: Any
) -> None:
    body: dict[str, Any] = {"method": method, **kw}
    if params:
        body["params"] = list(params)
    await ws.send_str(msgspec.json.encode(body).decode())


async def recv_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is WS.TEXT, msg
    data = msgspec.json.decode(msg.data)
    assert isinstance(data, dict)
    return data


async def reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next message that is not an event."""
    while "seq" in (data := await recv_json(ws)):
        pass
    return data


async def closed(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """Read until the connection ends; the last message (CLOSE, CLOSED or ERROR)."""
    while True:
        msg = await ws.receive(timeout=TIMEOUT)
        if msg.type in (WS.CLOSE, WS.CLOSED, WS.ERROR):
            return msg


def test_defaults_are_binance_spots() -> None:
    sim = ExchangeSimulator()
    assert sim.max_streams_per_connection == 1024
    assert (sim.max_incoming_per_second, sim.incoming_window) == (5, 1.0)
    assert (sim.max_connection_attempts, sim.attempts_window) == (300, 300.0)
    assert sim.max_connection_age == 24 * 3600
    assert (sim.server_ping_interval, sim.server_pong_timeout) == (180.0, 600.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "0.0.0.0"},
        {"rate": 0.0},
        {"max_connection_age": -1.0},
        {"max_streams_per_connection": 0},
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"loopback|must be"):
        ExchangeSimulator(**kwargs)


async def test_acks_match_ids_and_list_subscriptions(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator(rate=100.0) as sim, session.ws_connect(sim.url) as ws:
        assert sim.url == f"ws://127.0.0.1:{sim.port}/ws"
        await request(ws, "SUBSCRIBE", "btcusdt@trade", id=7)
        assert await reply(ws) == {"result": None, "id": 7}
        await request(ws, "SUBSCRIBE", "ethusdt@depth", "btcusdt@trade", id="abc")
        assert await reply(ws) == {"result": None, "id": "abc"}
        await request(ws, "LIST_SUBSCRIPTIONS", id=9)
        assert await reply(ws) == {"result": ["btcusdt@trade", "ethusdt@depth"], "id": 9}
        await request(ws, "UNSUBSCRIBE", "btcusdt@trade", "ethusdt@depth")  # no id: null
        assert await reply(ws) == {"result": None, "id": None}
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.05)  # 5 periods at 100/s: nothing follows the ack
        assert sim.subscriptions == {1: ()}


async def test_events_carry_stream_and_seq(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator(rate=200.0) as sim, session.ws_connect(sim.url) as ws:
        await request(ws, "SUBSCRIBE", "solusdt@trade", "solusdt@depth", id=1)
        assert await recv_json(ws) == {"result": None, "id": 1}
        seqs: dict[str, list[int]] = {"solusdt@trade": [], "solusdt@depth": []}
        while min(map(len, seqs.values())) < 3:
            event = await recv_json(ws)
            seqs[event["stream"]].append(event["seq"])
            assert event["s"] == "SOLUSDT"
        for got in seqs.values():
            assert got == list(range(1, len(got) + 1))
        stats = sim.statistics()
        assert stats.connections[0].events_sent >= sum(map(len, seqs.values()))
        assert stats.topics["solusdt@trade"].subscribers == 1


async def test_unknown_topic_is_rejected_by_name(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator() as sim, session.ws_connect(sim.url) as ws:
        await request(ws, "SUBSCRIBE", "btcusdt@trade", "btcusdt@nope", "bad", id=4)
        answer = await reply(ws)
        assert answer["id"] == 4
        assert answer["error"]["code"] == 2
        assert answer["error"]["topics"] == ["btcusdt@nope", "bad"]
        assert "'btcusdt@nope'" in answer["error"]["msg"]
        await request(ws, "LIST_SUBSCRIPTIONS", id=5)
        assert await reply(ws) == {"result": [], "id": 5}  # nothing of that request


async def test_malformed_requests_get_errors(session: aiohttp.ClientSession) -> None:
    async with (
        ExchangeSimulator(max_incoming_per_second=50) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        await ws.send_str("PING")
        assert (await reply(ws))["error"]["code"] == 3
        await ws.send_bytes(b"\x00")
        assert (await reply(ws))["error"]["code"] == 3
        await request(ws, "SUBSCRIBEE", "btcusdt@trade", id=1)
        assert (await reply(ws))["error"] == {
            "code": 2,
            "msg": "Invalid request: unknown method 'SUBSCRIBEE'",
        }
        await ws.send_str('{"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 2}')
        answer = await reply(ws)
        assert (answer["id"], answer["error"]["code"]) == (2, 2)


async def test_stream_cap_rejects_the_whole_request(session: aiohttp.ClientSession) -> None:
    async with (
        ExchangeSimulator(max_streams_per_connection=3) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        await request(ws, "SUBSCRIBE", "a@trade", "b@trade", id=1)
        assert await reply(ws) == {"result": None, "id": 1}
        await request(ws, "SUBSCRIBE", "b@trade", "c@trade", "d@trade", id=2)  # 2 + 2 > 3
        answer = await reply(ws)
        assert answer["id"] == 2
        assert answer["error"]["code"] == 2
        assert answer["error"]["topics"] == ["c@trade", "d@trade"]
        assert "'c@trade', 'd@trade'" in answer["error"]["msg"]
        assert "limit of 3 streams" in answer["error"]["msg"]
        await request(ws, "SUBSCRIBE", "b@trade", "c@trade", id=3)  # exactly at the cap
        assert await reply(ws) == {"result": None, "id": 3}
        await request(ws, "LIST_SUBSCRIPTIONS", id=4)
        assert await reply(ws) == {"result": ["a@trade", "b@trade", "c@trade"], "id": 4}


async def test_sixth_frame_within_a_second_closes_1008(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator() as sim, session.ws_connect(sim.url) as ws:
        for i in range(3):
            await request(ws, "LIST_SUBSCRIPTIONS", id=i)
        await ws.ping()  # pings and pongs count too
        await ws.pong()
        for i in range(3):
            assert await reply(ws) == {"result": [], "id": i}
        await request(ws, "LIST_SUBSCRIPTIONS", id=99)  # the 6th: closed, not answered
        msg = await closed(ws)
        assert msg.type is WS.CLOSE
        assert ws.close_code == 1008
        assert msg.extra == "too many requests"
    await wait_until(lambda: sim.connections_active == 0)
    assert sim.violations == 1
    (detail,) = sim.statistics().violation_details
    assert (detail.connection_id, detail.messages_in_window, detail.limit) == (1, 6, 5)
    assert detail.frame_type == "text"
    assert detail.age < 1.0
    assert sim.statistics().connections[0].close_code == 1008


async def test_evenly_spaced_client_is_never_in_violation(
    session: aiohttp.ClientSession,
) -> None:
    # 5 per 0.25 s window (time scaled by 4), spaced window / limit plus 10 %: the server's
    # check is exact, and both timers and reads jitter by up to a millisecond or two (epoll
    # sleeps in whole milliseconds), so a client spaced exactly window / limit apart is
    # flagged about every other window. 10 % leaves 25 ms of slack per 6 frames.
    async with (
        ExchangeSimulator(incoming_window=0.25) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        loop = asyncio.get_running_loop()
        period = 0.25 / 5 * 1.1
        start = loop.time()
        for i in range(13):
            await asyncio.sleep(max(0.0, start + i * period - loop.time()))
            if i % 4 == 3:
                await ws.ping()  # counted like any other frame
            else:
                await request(ws, "LIST_SUBSCRIPTIONS", id=i)
        while (await reply(ws))["id"] != 12:
            pass
        assert sim.violations == 0
        assert sim.messages_received == {1: 13}
        assert sim.connections_active == 1


async def test_connection_attempts_over_the_limit_get_429(
    session: aiohttp.ClientSession,
) -> None:
    window = 300 * MS
    async with ExchangeSimulator(max_connection_attempts=3, attempts_window=window) as sim:
        first = time.monotonic()
        for _ in range(3):
            async with session.ws_connect(sim.url):
                pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(sim.url)
        assert info.value.status == 429
        assert info.value.headers is not None
        assert info.value.headers["Retry-After"] == "1"  # whole seconds, rounded up
        assert sim.http_429_sent == 1
        await asyncio.sleep(max(0.0, first + window - time.monotonic()) + 20 * MS)
        async with session.ws_connect(sim.url):  # the window has slid past the first attempt
            pass
        assert sim.connections_accepted == 4


async def test_refuse_for_answers_429_then_recovers(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator() as sim:
        sim.refuse_for(150 * MS)
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(sim.url)
        assert info.value.status == 429
        assert info.value.headers is not None
        assert info.value.headers["Retry-After"] == "1"
        await asyncio.sleep(150 * MS)
        async with session.ws_connect(sim.url):
            pass
        assert (sim.http_429_sent, sim.connections_accepted) == (1, 1)


async def test_max_connection_age_closes_1001(session: aiohttp.ClientSession) -> None:
    async with (
        ExchangeSimulator(max_connection_age=0.2) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        start = time.monotonic()
        msg = await closed(ws)
        assert time.monotonic() - start == pytest.approx(0.2, abs=0.15)
        assert (msg.type, ws.close_code, msg.extra) == (WS.CLOSE, 1001, "max connection age")
    await wait_until(lambda: sim.connections_active == 0)
    conn = sim.statistics().connections[0]
    assert (conn.closed_by, conn.close_code, conn.open) == ("server", 1001, False)


async def test_unanswered_server_pings_close_1011(session: aiohttp.ClientSession) -> None:
    async with (
        ExchangeSimulator(
            server_ping_interval=0.05, server_pong_timeout=0.2, max_incoming_per_second=100
        ) as sim,
        session.ws_connect(sim.url, autoping=False) as silent,
        session.ws_connect(sim.url) as answering,  # aiohttp answers pings by itself
    ):
        # aiohttp answers pings only while someone reads: keep reading the answering client
        answered = asyncio.ensure_future(reply(answering))
        start = time.monotonic()
        pings = []
        while (msg := await silent.receive(timeout=TIMEOUT)).type is WS.PING:
            pings.append(msg.data)
        assert (msg.type, silent.close_code, msg.extra) == (WS.CLOSE, 1011, "pong timeout")
        assert time.monotonic() - start == pytest.approx(0.25, abs=0.15)  # 1st ping + timeout
        assert pings[:3] == [b"1", b"2", b"3"]
        await request(answering, "LIST_SUBSCRIPTIONS", id=1)
        assert await answered == {"result": [], "id": 1}  # still open
        stats = {c.connection_id: c for c in sim.statistics().connections}
        assert stats[1].pongs_received == 0
        assert stats[2].pongs_received >= 4
        assert stats[2].open


async def test_pongs_count_against_the_incoming_rate(session: aiohttp.ClientSession) -> None:
    # Binance counts pongs: a fast server ping makes an auto-ponging client violate.
    async with (
        ExchangeSimulator(server_ping_interval=0.02, max_incoming_per_second=3) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        await closed(ws)
        assert ws.close_code == 1008
    assert sim.statistics().violation_details[0].frame_type == "pong"


async def test_sequence_continues_across_a_reconnect(session: aiohttp.ClientSession) -> None:
    topic = "btcusdt@trade"
    async with ExchangeSimulator(rate=200.0) as sim, session.ws_connect(sim.url) as observer:
        await request(observer, "SUBSCRIBE", topic, id=1)
        assert await recv_json(observer) == {"result": None, "id": 1}
        before: list[int] = []
        async with session.ws_connect(sim.url) as ws:
            await request(ws, "SUBSCRIBE", topic, id=1)
            assert await reply(ws) == {"result": None, "id": 1}
            while len(before) < 5:
                before.append((await recv_json(ws))["seq"])
        # 10 events produced while disconnected
        await wait_until(lambda: sim.last_sequences[topic] >= before[-1] + 10)
        async with session.ws_connect(sim.url) as ws:
            await request(ws, "SUBSCRIBE", topic, id=2)
            assert await reply(ws) == {"result": None, "id": 2}
            after = [(await recv_json(ws))["seq"] for _ in range(5)]
        seen: list[int] = []
        while len(seen) == 0 or seen[-1] < after[-1]:
            seen.append((await recv_json(observer))["seq"])
    assert seen == list(range(1, len(seen) + 1))  # the observer saw every event
    assert before == list(range(before[0], before[0] + 5))
    assert after == list(range(after[0], after[0] + 5))
    missed = set(seen) - set(before) - set(after)
    gap = set(range(before[-1] + 1, after[0]))
    assert len(gap) >= 5  # the downtime cost events...
    assert gap <= missed  # ...and the jump is exactly the events produced meanwhile
    assert sim.statistics().topics[topic].last_sequence >= after[-1]


async def test_kill_all_resets_every_connection(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator(rate=100.0) as sim:
        clients = [await session.ws_connect(sim.url) for _ in range(2)]
        for ws in clients:
            await request(ws, "SUBSCRIBE", "btcusdt@trade", id=1)
            await reply(ws)
        assert sim.kill_all() == 2
        for ws in clients:
            msg = await closed(ws)
            assert msg.type in (WS.CLOSED, WS.ERROR)  # no close frame
            assert ws.close_code == 1006
            await ws.close()
        stats = sim.statistics()
        assert (stats.connections_active, stats.connections_aborted) == (0, 2)
        assert {c.closed_by for c in stats.connections} == {"abort"}
        assert sim.kill_all() == 0
        async with session.ws_connect(sim.url) as ws:  # still serving
            await request(ws, "SUBSCRIBE", "btcusdt@trade", id=2)
            assert await reply(ws) == {"result": None, "id": 2}
            assert (await recv_json(ws))["seq"] > 1


async def test_close_all_sends_the_code(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator() as sim, session.ws_connect(sim.url) as ws:
        reading = asyncio.ensure_future(closed(ws))
        assert await sim.close_all(4000, "maintenance") == 1
        msg = await reading
        assert (ws.close_code, msg.extra) == (4000, "maintenance")
        assert sim.connections_active == 0


async def test_stall_then_resume(session: aiohttp.ClientSession) -> None:
    async with (
        ExchangeSimulator(rate=200.0, max_incoming_per_second=50) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        await request(ws, "SUBSCRIBE", "btcusdt@trade", id=1)
        assert await reply(ws) == {"result": None, "id": 1}
        last = (await recv_json(ws))["seq"]
        sim.stall(1)
        while True:  # drain what was in flight before the stall
            try:
                last = msgspec.json.decode((await ws.receive(timeout=0.05)).data)["seq"]
            except TimeoutError:
                break
        await request(ws, "LIST_SUBSCRIPTIONS", id=2)  # ignored while stalled
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.05)
        assert sim.statistics().connections[0].stalled
        sim.resume(1)
        event = await recv_json(ws)
        assert event["seq"] > last + 5  # ~20 events produced while stalled were lost
        await request(ws, "LIST_SUBSCRIPTIONS", id=3)
        assert await reply(ws) == {"result": ["btcusdt@trade"], "id": 3}


async def test_slow_consumer_is_aborted(session: aiohttp.ClientSession) -> None:
    topics = [f"s{i}usdt@depth" for i in range(20)]
    async with (
        ExchangeSimulator(rate=1000.0, max_send_buffer=1 << 16) as sim,
        session.ws_connect(sim.url) as ws,
    ):
        await request(ws, "SUBSCRIBE", *topics, id=1)
        # The client reads nothing meanwhile. The simulator must fill the kernel's buffers
        # first (up to net.ipv4.tcp_rmem's maximum): a loaded machine takes seconds.
        aborted = "a slow consumer aborted"
        await wait_until(lambda: not sim.connections_active, aborted, timeout=30_000 * MS)
        conn = sim.statistics().connections[0]
        assert (conn.closed_by, conn.close_reason) == ("abort", "slow consumer")


async def test_lifetime_bounds_the_simulator(session: aiohttp.ClientSession) -> None:
    async with ExchangeSimulator(lifetime=0.1) as sim:
        async with session.ws_connect(sim.url) as ws:
            await closed(ws)
            assert ws.close_code == 1001
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(sim.url)
        assert info.value.status == 503


def test_thread_mode_and_its_fault_hooks() -> None:
    async def client(sim: ExchangeSimulatorThread) -> int | None:
        async with aiohttp.ClientSession() as s, s.ws_connect(sim.url) as ws:
            await request(ws, "SUBSCRIBE", "btcusdt@trade", id=1)
            assert await reply(ws) == {"result": None, "id": 1}
            await asyncio.to_thread(sim.kill_all)
            await closed(ws)
            return ws.close_code

    with ExchangeSimulatorThread(rate=50.0) as sim:
        assert asyncio.run(client(sim)) == 1006
        stats = sim.statistics()
        assert (stats.connections_accepted, stats.connections_aborted) == (1, 1)
        sim.refuse_for(10.0)
        assert sim.close_all() == 0
