"""A sharded manager against a venue's limits, on the loopback exchange simulator (issue 11):
frames paced at the wire with pongs counted, attempts counted as the venue counts them, an
unacknowledged subscription kept or reported, a rotation's old connection not redialled,
quiet logs for the venue's expected answers, and the configuration-time warning.

Every manager is given the venue's exact numbers: the margins are the library's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from networkpype.demo.exchange import ExchangeSimulator
from networkpype.demo.exchange_connection import SimulatedConnection
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.events import GaveUp, Reconnected, RotationFinished, TopicsLost
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.response import WebSocketResponse
from networkpype.websocket.sharded import SUBSCRIBE_TRIES
from tests.timing import MS, wait_until

FAST = RestartPolicy(backoff=BackoffPolicy(initial=0.01, cap=0.05, healthy_after=0.0))


@pytest.fixture
async def factory() -> AsyncIterator[ConnectionManagersFactory]:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 100, 1)]))
    yield factory
    await factory.close()


def topics(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i:03d}usdt@trade" for i in range(n)]


async def test_frames_and_pongs_stay_within_the_venues_rate_at_its_exact_number(
    factory: ConnectionManagersFactory,
) -> None:
    """20 frames per 0.25 s (the venue), pings every 0.1 s answered with pongs, 40
    subscriptions one a message with ``min_send_interval`` the venue's own 0.25 / 20: no
    1008. Spaced when granted and pongs not counted, the venue closed such connections."""
    async with ExchangeSimulator(
        rate=20.0, max_incoming_per_second=20, incoming_window=0.25, server_ping_interval=0.1
    ) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=1),
            max_topics_per_connection=40,
            min_send_interval=0.25 / 20,
            restart_policy=FAST,
        )
        await ws.connect(sim.url)
        result = await ws.subscribe_topics(topics(40))
        assert result.rejected == {}
        await asyncio.sleep(300 * MS)  # frames and pongs flow for three ping intervals
        await wait_until(lambda: sim.statistics().connections[0].pongs_received > 0, "a pong")
        stats = sim.statistics()
        assert stats.violations == 0, stats.violation_details
        (conn,) = stats.connections
        assert conn.pongs_received > 0 and len(conn.subscriptions) == 40
        await ws.disconnect()


async def test_attempts_saturating_the_venues_limit_are_never_refused(
    factory: ConnectionManagersFactory,
) -> None:
    """12 connections (one topic each) redialled after resets, against 5 attempts per 0.5 s:
    the attempts wait for the budget, and the venue refuses none."""
    async with ExchangeSimulator(rate=20.0, max_connection_attempts=5, attempts_window=0.5) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1,
            max_connection_attempts=(5, 0.5),
            restart_policy=FAST,
        )
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(topics(12))).rejected == {}
        for _ in range(2):
            sim.kill_all()
            await wait_until(lambda: sim.connections_active >= 12, "12 connections back")
        assert sim.connections_accepted == 36
        assert sim.attempts_refused == 0
        await ws.disconnect()


class Unanswered(ExchangeSimulator):
    """The simulator, leaving unanswered every SUBSCRIBE that names a ``mute`` topic (on
    connections from ``mute_from`` on), and closing connection 1 with 1008 at the first
    SUBSCRIBE of ``drop`` (a cool-off)."""

    def __init__(self, *args: Any, mute_from: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.muted: list[int] = []
        self.mute_from = mute_from

    def _on_request(self, conn: SimulatedConnection, text: str) -> None:
        if '"SUBSCRIBE"' in text and "mute" in text and conn.connection_id >= self.mute_from:
            self.muted.append(conn.connection_id)
            return
        if '"SUBSCRIBE"' in text and "drop" in text and conn.connection_id == 1:
            conn.begin_close(1008, "too many requests")
            return
        super()._on_request(conn, text)


async def test_a_subscription_unanswered_across_a_cool_off_is_kept_and_replayed(
    factory: ConnectionManagersFactory,
) -> None:
    """The connection closes (1008) before the acknowledgement and cools off for longer than
    ``ack_timeout`` (both tuned short): the subscription stays recorded, the replay sends it
    again, its acknowledgement is awaited, and the topic streams. (It used to be counted
    rejected at the timeout, taken out of the record, and never subscribed again.)"""
    async with Unanswered(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            restart_policy=RestartPolicy(cool_off=0.8, backoff=FAST.backoff)
        )
        ws._ack_timeout = 0.2  # tuned: shorter than the cool-off
        await ws.connect(sim.url)
        result = await ws.subscribe_topics(["dropusdt@trade"])
        assert result.accepted == ("dropusdt@trade",) and result.rejected == {}
        async with asyncio.timeout(5):
            async for item in ws.iter_messages():
                if isinstance(item, WebSocketResponse):
                    assert item.data["stream"] == "dropusdt@trade"
                    break
        assert sim.connections_accepted == 2
        await ws.disconnect()


async def test_a_subscription_never_answered_is_sent_again_then_reported(
    factory: ConnectionManagersFactory,
) -> None:
    async with Unanswered(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=1), restart_policy=FAST
        )
        ws._ack_timeout = 0.2  # tuned: a short test
        await ws.connect(sim.url)
        result = await ws.subscribe_topics(["okusdt@trade", "muteusdt@trade"])
        assert result.accepted == ("okusdt@trade",)
        assert "no acknowledgement after 3 sends" in result.rejected["muteusdt@trade"]
        assert sim.muted == [1] * SUBSCRIBE_TRIES
        assert ws.shard_of("muteusdt@trade") is None  # out of the record: not replayed
        assert ws.shard_of("okusdt@trade") == "shard1"
        await ws.disconnect()


class RejectOnSecond(ExchangeSimulator):
    """The simulator, rejecting ``bad`` topics on every connection after the first."""

    def _on_request(self, conn: SimulatedConnection, text: str) -> None:
        if conn.connection_id > 1 and "bad" in text and '"SUBSCRIBE"' in text:
            request = json.loads(text)
            conn.send_json({"error": {"code": 2, "msg": "no more bad"}, "id": request["id"]})
            return
        super()._on_request(conn, text)


async def test_a_topic_a_rotation_loses_is_named_by_an_event(
    factory: ConnectionManagersFactory,
) -> None:
    async with RejectOnSecond(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=1), rotation_overlap=0.05
        )
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(["goodusdt@trade", "badusdt@trade"])).rejected == {}
        events = ws.iter_messages(events=True)
        await ws.rotate("shard1")
        lost: list[TopicsLost] = []
        async with asyncio.timeout(5):
            async for item in events:
                if isinstance(item, TopicsLost):
                    lost.append(item)
                elif isinstance(item, RotationFinished):
                    assert not item.aborted
                    break
        assert [(e.topics, e.reason) for e in lost] == [
            (("badusdt@trade",), "no more bad (code 2)")
        ]
        assert ws.shard_of("badusdt@trade") is None
        assert ws.shard_of("goodusdt@trade") == "shard2"
        await ws.disconnect()


@pytest.mark.parametrize(
    ("venue", "topic", "reason"),
    [
        (RejectOnSecond, "badusdt@trade", "rejected at a replay: no more bad (code 2)"),
        (
            lambda **kw: Unanswered(mute_from=2, **kw),
            "muteusdt@trade",
            "no acknowledgement after 3 sends, ack_timeout=0.2 s apart, at a replay",
        ),
    ],
    ids=["rejected", "never-answered"],
)
async def test_a_topic_rejected_or_unanswered_at_a_replay_is_named_by_an_event(
    factory: ConnectionManagersFactory,
    venue: Callable[..., ExchangeSimulator],
    topic: str,
    reason: str,
) -> None:
    """Accepted on the first connection, rejected (or never answered, though sent again
    ``SUBSCRIBE_TRIES`` times) when the reconnection replays it: out of the record (not
    replayed again, dead) and reported, not only logged. (A replay's missing answer used to
    be awaited by nobody: the topic stayed dark and recorded, with no event.)"""
    async with venue(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=1), restart_policy=FAST
        )
        ws._ack_timeout = 0.2  # tuned: a short test
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(["goodusdt@trade", topic])).rejected == {}
        events = ws.iter_messages(events=True)
        assert sim.kill_all() == 1
        async with asyncio.timeout(10):
            async for item in events:
                if isinstance(item, TopicsLost):
                    break
        assert (item.topics, item.reason) == ((topic,), reason)
        if isinstance(sim, Unanswered):
            assert sim.muted == [2] * SUBSCRIBE_TRIES  # sent again on the reconnection
        assert ws.shard_of(topic) is None
        assert ws.shard_of("goodusdt@trade") == "shard1"
        assert len(await ws._actor.proxy().subscriptions("shard1")) == 1  # type: ignore[union-attr]
        await ws.disconnect()


async def test_a_shard_given_up_while_its_replay_is_awaited_is_reported_once(
    factory: ConnectionManagersFactory,
) -> None:
    """A shard whose replay is still unanswered is given up on (restarts past its policy):
    its ``GaveUp`` names its topics, and the cancelled wait for the replay's answer adds no
    ``TopicsLost`` for them, nor takes them out of the lost shard's statistics."""
    async with Unanswered(rate=20.0, mute_from=3) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1,
            restart_policy=RestartPolicy(
                max_restarts=1, backoff=BackoffPolicy(initial=0.01, cap=0.05, healthy_after=60.0)
            ),
        )
        await ws.connect(sim.url)
        names = ["muteusdt@trade", "okusdt@trade"]
        assert (await ws.subscribe_topics(names)).rejected == {}
        events = ws.iter_messages(events=True)
        assert sim.kill(1)  # shard1 comes back as connection 3, its replay unanswered
        await wait_until(lambda: sim.muted == [3], "the replay unanswered")
        await wait_until(
            lambda: any(t.get_name() == "networkpype-replay-shard1" for t in asyncio.all_tasks()),
            "the replay's answer awaited",
        )
        assert sim.kill(3)  # a second restart (the policy allows it), unanswered again
        await wait_until(lambda: sim.muted == [3, 4], "the second replay unanswered")
        assert sim.kill(4)  # a third: given up on
        seen: list[Any] = []
        async with asyncio.timeout(10):
            async for item in events:
                if isinstance(item, GaveUp):
                    assert sim.kill(2)  # shard2 reconnects after the give-up: a marker
                elif isinstance(item, Reconnected) and item.connection_id == "shard2":
                    break
                if not isinstance(item, WebSocketResponse):
                    seen.append(item)
        assert [type(e).__name__ for e in seen if isinstance(e, GaveUp | TopicsLost)] == ["GaveUp"]
        (lost,) = [c for c in (await ws.statistics()).connections if c.state == "gave_up"]
        assert lost.connection_id == "shard1" and lost.topics == 1
        await ws.disconnect()


async def test_a_rotated_out_connection_reset_in_its_overlap_is_not_redialled(
    factory: ConnectionManagersFactory,
) -> None:
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(restart_policy=FAST, rotation_overlap=0.5)
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(topics(3))).rejected == {}
        rotation = asyncio.create_task(ws.rotate("shard1"))
        await wait_until(lambda: ws.shard_of(topics(3)[0]) == "shard2", "moved to shard2")
        assert sim.kill(1)  # the old connection, in its overlap
        await asyncio.wait_for(rotation, 5)
        assert sim.connections_accepted == 2  # the old one was closed, never redialled
        assert sim.connections_active == 1
        await ws.disconnect()


async def test_a_connection_cut_while_its_replacement_subscribes_costs_no_attempt(
    factory: ConnectionManagersFactory,
) -> None:
    """The venue cuts the old connection (its age limit) while the replacement is still
    subscribing: the old one waits for the rotation instead of redialling (an attempt, and a
    replay, thrown away at the swap); the rotation completes."""
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=1),
            min_send_interval=0.1,
            restart_policy=FAST,
            rotation_overlap=0.05,
        )
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(topics(4))).rejected == {}
        rotation = asyncio.create_task(ws.rotate("shard1"))
        await wait_until(lambda: sim.connections_accepted == 2, "the replacement accepted")
        await sim._connections[1].close(1001, "max connection age")
        await asyncio.wait_for(rotation, 10)
        assert sim.connections_accepted == 2
        assert {ws.shard_of(t) for t in topics(4)} == {"shard2"}
        await ws.disconnect()


async def test_a_replacement_that_drops_in_the_overlap_is_covered_by_the_old_one(
    factory: ConnectionManagersFactory,
) -> None:
    """The new connection drops right after taking over: the old one keeps delivering until
    the new one's replay is acknowledged, so every topic's sequence goes on without a hole
    (closing the old one at the end of the overlap left a gap no event named)."""
    names = topics(4)
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=1),
            min_send_interval=0.05,
            restart_policy=FAST,
            rotation_overlap=0.1,
            dedup_key=lambda data: (data.get("stream"), data.get("seq")),
        )
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(names)).rejected == {}
        seqs: dict[str, list[int]] = {name: [] for name in names}
        finished: list[RotationFinished] = []

        async def consume() -> None:
            async for item in ws.iter_messages(events=True):
                if isinstance(item, WebSocketResponse):
                    seqs[item.data["stream"]].append(item.data["seq"])
                elif isinstance(item, RotationFinished):
                    finished.append(item)

        consumer = asyncio.create_task(consume())
        rotation = asyncio.create_task(ws.rotate("shard1"))
        await wait_until(lambda: ws.shard_of(names[0]) == "shard2", "moved to shard2")
        assert sim.kill(2)  # the new one, in the overlap
        await asyncio.wait_for(rotation, 10)
        await wait_until(lambda: finished and sim.connections_active == 1, "rotation finished")
        assert [f.aborted for f in finished] == [False]
        assert sim.connections_accepted == 3  # old, new, the new one's redial
        for name, got in seqs.items():
            assert got == list(range(got[0], got[0] + len(got))), f"{name}: a hole or a copy"
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await ws.disconnect()


async def test_a_1008_cools_off_its_own_connection_only(
    factory: ConnectionManagersFactory,
) -> None:
    """A 1008 is the venue's verdict on one connection: that shard waits its cool-off, and
    another shard reset meanwhile is redialled at once (one 1008 once put every connection
    into a 60 s cool-off)."""
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1,
            restart_policy=RestartPolicy(cool_off=30.0, backoff=FAST.backoff),
        )
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(topics(2))).rejected == {}
        first, second = ws._shards
        sim._connections[1].begin_close(1008, "too many requests")
        await wait_until(lambda: not first.connection.connected, "shard1 closed with 1008")
        assert sim.kill(2)
        await wait_until(lambda: sim.connections_accepted == 3, "shard2 redialled")
        await wait_until(lambda: second.connection.connected, "shard2 open again")
        assert not first.connection.connected  # still cooling off: no attempt of its own
        assert sim.connections_accepted == 3
        await ws.disconnect()


async def test_the_venues_expected_answers_are_logged_without_tracebacks(
    factory: ConnectionManagersFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 on a first open and on redials, a 1008, sends refused while a shard is down:
    each logged on one line, never with a traceback."""
    caplog.set_level(logging.DEBUG)
    async with ExchangeSimulator(rate=20.0, max_incoming_per_second=3) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1,
            restart_policy=RestartPolicy(cool_off=0.3, backoff=FAST.backoff),
        )
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade"])
        sim.refuse_for(300 * MS)
        with pytest.raises(ConnectionError, match="HTTP 429"):
            await ws.subscribe_topics(["bbbusdt@trade"])
        for i in range(6):  # unpaced: the venue closes with 1008
            with contextlib.suppress(ConnectionError):
                await ws.send(
                    WebSocketJSONRequest(payload={"method": "LIST_SUBSCRIPTIONS", "id": i})
                )
        await asyncio.sleep(500 * MS)  # the 1008, then redials during the 429s and cool-off
        await wait_until(lambda: sim.violations > 0, "a violation")
        assert sim.violations == 1
        await ws.disconnect()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


async def test_settings_whose_rotations_cannot_fit_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="networkpype.websocket.sharded")
    from networkpype.websocket.sharded import ShardedWebSocketManager

    async def never() -> Any:
        raise AssertionError("not opened")

    ShardedWebSocketManager(
        never,
        min_send_interval=0.2,
        max_connection_attempts=(30, 60.0),
        max_age=20.0,
        max_topics_per_connection=200,
        codec=BinanceCodec(max_topics_per_message=50),
    )
    assert not caplog.records  # one connection's rotations fit
    ShardedWebSocketManager(
        never,
        min_send_interval=0.2,
        max_connection_attempts=(3, 60.0),
        max_age=20.0,
    )
    (record,) = caplog.records
    assert "rotations fit 0 connections" in record.getMessage()
