"""Sharded topic subscriptions against the loopback exchange simulator."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal

import pytest
from aiohttp import web

from networkpype.demo.exchange import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ConfigurationError, ConnectAbortedError, GaveUpError
from networkpype.protocol.events import Disconnected, GaveUp, MessagesDropped, Reconnected
from networkpype.supervisor.policy import BackoffPolicy, Kind, RestartPolicy, Verdict
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.response import WebSocketResponse
from networkpype.websocket.sharded import ShardedWebSocketManager
from tests.timing import MS, WAIT, wait_until

FAST = RestartPolicy(backoff=BackoffPolicy(initial=0.01, cap=0.05, healthy_after=0.0))


@pytest.fixture
async def factory() -> AsyncIterator[ConnectionManagersFactory]:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 100, 1)]))
    yield factory
    await factory.close()


class SlowHandshakes(ExchangeSimulator):
    """The simulator, answering its n-th handshake (0-based) after ``delays[n]`` seconds."""

    def __init__(self, *args: Any, delays: dict[int, float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delays = delays
        self.handshakes = 0

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        n, self.handshakes = self.handshakes, self.handshakes + 1
        await asyncio.sleep(self.delays.get(n, 0.0))
        return await super()._handle_ws(request)


def topics(n: int) -> list[str]:
    return [f"s{i:04d}usdt@trade" for i in range(n)]


async def test_thousand_topics_five_connections_kill_all_paced_and_every_gap_reported(
    factory: ConnectionManagersFactory,
) -> None:
    async with ExchangeSimulator(rate=2.0, max_incoming_per_second=5) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=50),
            max_topics_per_connection=200,
            min_send_interval=0.25,  # 4 a second, under the venue's 5
            max_connection_attempts=(20, 1.0),
            restart_policy=FAST,
        )
        await ws.connect(sim.url)
        wanted = topics(1000)
        result = await ws.subscribe_topics(wanted)
        assert result.rejected == {} and len(result.accepted) == 1000
        assert ws.connections == 5
        assert sorted(len(t) for t in sim.subscriptions.values()) == [200] * 5

        last_seq: dict[str, int] = {}
        gap_open: set[str] = set()  # shards with a Disconnected not yet followed by data
        unreported: list[tuple[str, int, int]] = []
        reconnected: set[str] = set()
        after_kill: set[str] = set()
        killed = False

        async def consume() -> None:
            async for item in ws.iter_messages(events=True):
                if isinstance(item, Disconnected):
                    gap_open.add(item.connection_id)
                elif isinstance(item, Reconnected):
                    reconnected.add(item.connection_id)
                elif isinstance(item, WebSocketResponse) and isinstance(item.data, dict):
                    topic, seq = item.data["stream"], item.data["seq"]
                    shard = ws.shard_of(topic)
                    previous = last_seq.get(topic)
                    if previous is not None and seq != previous + 1 and shard not in gap_open:
                        unreported.append((topic, previous, seq))
                    last_seq[topic] = seq
                    if killed:
                        after_kill.add(topic)

        consumer = asyncio.create_task(consume())
        await wait_until(lambda: len(last_seq) == 1000, "data on every topic")
        killed = True
        assert sim.kill_all() == 5
        await wait_until(
            lambda: len(after_kill) == 1000 and len(reconnected) == 5,
            "every shard reconnected, data on every topic again",
            timeout=15_000 * MS,
        )
        assert sim.violations == 0, sim.statistics()
        assert unreported == [], f"gaps without a Disconnected event: {unreported[:5]}"
        assert sorted(len(t) for t in sim.subscriptions.values() if t) == [200] * 5
        stats = await ws.statistics()
        assert len(stats.connections) == 5 and len(stats.subscriptions) == 1000
        assert all(c.restarts == 1 for c in stats.connections)
        await ws.disconnect()
        await asyncio.wait_for(consumer, 2)


async def test_rejected_topic_is_reported_not_dropped(factory: ConnectionManagersFactory) -> None:
    async with ExchangeSimulator(rate=5.0) as sim:
        ws = await factory.get_sharded_ws_manager(codec=BinanceCodec(max_topics_per_message=1))
        await ws.connect(sim.url)
        result = await ws.subscribe_topics(["btcusdt@trade", "not a topic"])
        assert result.accepted == ("btcusdt@trade",)
        assert list(result.rejected) == ["not a topic"]
        assert "code 2" in result.rejected["not a topic"]
        assert ws.shard_of("not a topic") is None
        await ws.disconnect()


async def test_per_topic_stream_and_unsubscribe_closes_idle_connections(
    factory: ConnectionManagersFactory,
) -> None:
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await factory.get_sharded_ws_manager(max_topics_per_connection=1)
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade", "bbbusdt@trade"])
        assert ws.connections == 2
        only_a = ws.stream("aaausdt@trade")
        seen = []
        async for item in only_a:
            if isinstance(item, WebSocketResponse):
                seen.append(item.data["stream"])
            if len(seen) == 5:
                break
        assert seen == ["aaausdt@trade"] * 5
        await ws.unsubscribe_topics(["bbbusdt@trade"])
        assert ws.connections == 1
        subscribed = [("aaausdt@trade",)]
        await wait_until(lambda: [t for t in sim.subscriptions.values() if t] == subscribed)
        await ws.disconnect()


async def read_seqs(ws: Any, n: int) -> tuple[list[int], int, bool]:
    """The sequence numbers read, the drops reported, and whether the ack was read."""
    seqs: list[int] = []
    dropped = 0
    ack = False
    async with asyncio.timeout(10):
        async for item in ws.iter_messages(events=True):
            if isinstance(item, MessagesDropped):
                dropped += item.count
            elif isinstance(item, WebSocketResponse) and isinstance(item.data, dict):
                if "seq" in item.data:
                    seqs.append(item.data["seq"])
                    if len(seqs) == n:
                        break
                else:
                    ack = item.data == {"result": None, "id": 1}
    return seqs, dropped, ack


@pytest.mark.parametrize("overflow", ["block", "drop_oldest"])
async def test_slow_consumer_block_loses_nothing_drop_oldest_counts(
    factory: ConnectionManagersFactory, overflow: Literal["block", "drop_oldest"]
) -> None:
    async with ExchangeSimulator(rate=1000.0) as sim:
        ws = await factory.get_ws_manager(max_queue=20, overflow=overflow)
        await ws.connect(sim.url)
        from networkpype.websocket.request import WebSocketJSONRequest

        await ws.subscribe(
            WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": ["x@trade"], "id": 1})
        )
        await asyncio.sleep(300 * MS)  # the consumer is away; ~300 events arrive
        seqs, dropped, ack = await read_seqs(ws, 200)
        # The topic's sequence starts at 1 with this subscription; drops are the oldest.
        missing = seqs[0] - 1 + sum(b - a - 1 for a, b in itertools.pairwise(seqs))
        if overflow == "block":
            assert missing == 0 and dropped == 0 and ack
        else:
            assert dropped > 0
            # Every drop is accounted for: a missing event, or the (oldest) ack itself.
            assert missing + (0 if ack else 1) == dropped, (missing, dropped, ack)
        await ws.disconnect()


async def test_a_drop_in_the_merged_queue_reaches_every_topic_stream(
    factory: ConnectionManagersFactory,
) -> None:
    """The merged queue drops the oldest frames while the router waits on a full stream: a
    drop not tied to one topic (``MessagesDropped``, ``connection_id="*"``) could have hit
    any topic, so every topic's stream is told, in order with its data."""
    names = ["aaausdt@trade", "bbbusdt@trade"]
    async with ExchangeSimulator(rate=200.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1, max_queue=4, overflow="drop_oldest"
        )
        await ws.connect(sim.url)
        # Streams that never drop: a full one holds up the router, so the merged queue drops.
        streams = {n: ws.stream(n, max_queue=1, overflow="block") for n in names}
        assert (await ws.subscribe_topics(names)).rejected == {}

        async def merged_dropped() -> bool:
            return (await ws.statistics()).dropped > 0

        await wait_until(merged_dropped, "frames dropped by the merged queue")

        async def drops_told(stream: AsyncIterator[Any]) -> int:
            async for item in stream:  # read on: the router waits on any full stream
                if isinstance(item, MessagesDropped):
                    return item.count
            return 0

        async with asyncio.timeout(WAIT), asyncio.TaskGroup() as tasks:
            told = {n: tasks.create_task(drops_told(s)) for n, s in streams.items()}
        assert all(t.result() > 0 for t in told.values()), {n: t.result() for n, t in told.items()}
        await ws.disconnect()


async def test_rotation_under_load_make_before_break_no_gap_no_duplicate(
    factory: ConnectionManagersFactory,
) -> None:
    names = [f"r{i}usdt@trade" for i in range(4)]
    async with ExchangeSimulator(rate=200.0, max_connection_age=60.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=2,
            max_age=0.3,  # rotate every connection after 0.3 s
            rotation_stagger=0.05,
            rotation_overlap=0.1,
            dedup_key=lambda data: (data.get("stream"), data.get("seq")),
        )
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(names)).rejected == {}
        seqs: dict[str, list[int]] = {n: [] for n in names}
        rotations: list[Any] = []
        async with asyncio.timeout(10):
            async for item in ws.iter_messages(events=True):
                if isinstance(item, WebSocketResponse) and "seq" in item.data:
                    seqs[item.data["stream"]].append(item.data["seq"])
                elif type(item).__name__ == "RotationFinished":
                    rotations.append(item)
                    if len(rotations) == 4:
                        break
        assert sim.connections_accepted >= 6  # two connections, each replaced at least once
        assert sum(r.duplicates_removed for r in rotations) > 0  # the overlap was real
        for name, got in seqs.items():
            assert got == list(range(got[0], got[0] + len(got))), f"{name}: gap or duplicate"
        await ws.disconnect()


async def test_statistics_snapshot_and_periodic_log_lines(
    factory: ConnectionManagersFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="networkpype.websocket.sharded")
    async with ExchangeSimulator(rate=100.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1, stats_interval=0.05, restart_policy=FAST
        )
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade", "bbbusdt@trade"])

        async def data_on_both() -> bool:
            return all(c.messages_in > 0 for c in (await ws.statistics()).connections)

        await wait_until(data_on_both, "data on both connections")

        def logged(start: str) -> bool:
            return any(r.getMessage().startswith(start) for r in caplog.records)

        await wait_until(lambda: logged("shard1 open"), "a periodic log line")
        before = await ws.statistics()
        assert [c.state for c in before.connections] == ["open", "open"]
        assert all(
            c.uptime > 0 and c.messages_in > 0 and c.bytes_in > 0 for c in before.connections
        )
        assert all(c.messages_out == 1 and c.last_error is None for c in before.connections)
        assert {s.topic: s.connection_id for s in before.subscriptions} == {
            "aaausdt@trade": "shard1",
            "bbbusdt@trade": "shard2",
        }
        sim.kill_all()

        async def both_restarted() -> bool:
            connections = (await ws.statistics()).connections
            return all(c.restarts == 1 and c.state == "open" for c in connections)

        await wait_until(both_restarted, "both connections restarted")
        after = await ws.statistics()
        assert all(c.last_error and "Error" in c.last_error for c in after.connections)
        lines = [r.getMessage() for r in caplog.records if "topics" in r.getMessage()]
        assert any(line.startswith("shard1 open") for line in lines)
        await ws.disconnect()


async def test_replies_to_the_users_own_requests_reach_the_consumer(
    factory: ConnectionManagersFactory,
) -> None:
    from networkpype.websocket.request import WebSocketJSONRequest

    async with ExchangeSimulator(rate=1.0) as sim:
        ws = await factory.get_sharded_ws_manager()
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade"])
        await ws.send(WebSocketJSONRequest(payload={"method": "LIST_SUBSCRIPTIONS", "id": 777}))
        async with asyncio.timeout(3):
            async for item in ws.iter_messages():
                if isinstance(item.data, dict) and item.data.get("id") == 777:
                    assert item.data["result"] == ["aaausdt@trade"]
                    break
        await ws.disconnect()


async def test_stream_lifecycle_and_no_actor_left_behind(
    factory: ConnectionManagersFactory,
) -> None:
    from pykka import ActorRegistry

    before = len(ActorRegistry.get_all())
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            min_send_interval=0.01, max_connection_attempts=(10, 1.0)
        )
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade", "bbbusdt@trade"])
        merged = ws.iter_messages()
        assert isinstance(merged, AsyncGenerator)  # closed below
        await asyncio.wait_for(merged.__anext__(), 2)  # reading the shared queue directly
        only_a = ws.stream("aaausdt@trade")  # the router takes over from the direct reader
        got_b = await asyncio.wait_for(merged.__anext__(), 2)
        while got_b.data["stream"] != "bbbusdt@trade":  # a batch taken before the switch
            got_b = await asyncio.wait_for(merged.__anext__(), 2)
        for _ in range(5):  # from now on, only what no stream claims
            assert (await asyncio.wait_for(merged.__anext__(), 2)).data["stream"] == "bbbusdt@trade"
        await merged.aclose()
        first = await asyncio.wait_for(only_a.__anext__(), 2)
        while not isinstance(first, WebSocketResponse):
            first = await asyncio.wait_for(only_a.__anext__(), 2)
        assert first.data["stream"] == "aaausdt@trade"
        await ws.unsubscribe_topics(["aaausdt@trade"])
        async with asyncio.timeout(2):  # the unsubscribed topic's stream ends
            async for _ in only_a:
                pass
        await ws.disconnect()
    assert len(ActorRegistry.get_all()) == before  # pacing and attempt throttlers included


async def test_disconnect_mid_rotation_leaves_no_connection_or_actor(
    factory: ConnectionManagersFactory,
) -> None:
    from pykka import ActorRegistry

    from networkpype.protocol.events import RotationStarted

    before = len(ActorRegistry.get_all())
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(max_age=0.2, rotation_overlap=5.0)
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade"])
        async with asyncio.timeout(3):
            async for item in ws.iter_messages(events=True):
                if isinstance(item, RotationStarted):
                    break  # both connections are open now, for the 5 s overlap
        await asyncio.sleep(50 * MS)  # mid rotation
        await asyncio.wait_for(ws.disconnect(), 1)
        await wait_until(lambda: sim.connections_active == 0, "every connection closed")
    assert len(ActorRegistry.get_all()) == before


async def test_shards_share_one_manager_and_one_supervisor(
    factory: ConnectionManagersFactory,
) -> None:
    """A connection costs one actor: every shard runs under one manager actor and one
    supervisor; the attempt budget is the manager's plain state, and each connection spaces
    its own frames (no throttler actor)."""
    from pykka import ActorRegistry

    def census() -> dict[str, int]:
        counts: dict[str, int] = {}
        for ref in ActorRegistry.get_all():
            counts[ref.actor_class.__name__] = counts.get(ref.actor_class.__name__, 0) + 1
        return counts

    before = census()
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1,
            min_send_interval=0.01,
            max_connection_attempts=(50, 1.0),
            restart_policy=FAST,
        )
        await ws.connect(sim.url)
        result = await ws.subscribe_topics(topics(4))
        assert result.rejected == {} and ws.connections == 4
        grown = {k: v - before.get(k, 0) for k, v in census().items() if v != before.get(k, 0)}
        assert grown == {
            "ManagerActor": 1,
            "SupervisorActor": 1,
            "ConnectionActor": 4,
        }

        # An idle shard runs no task of its own: liveness is on timers, the outbox task
        # exists only while sends are queued, and the reader parks (the parser's hook hands
        # data over and wakes it for anything else). The manager runs one, the watch of the
        # replays' answers.
        def kinds() -> list[str]:
            return sorted(
                t.get_name().rsplit("-", 1)[0]
                for t in asyncio.all_tasks()
                if t.get_name().startswith("networkpype-") and not t.done()
            )

        await wait_until(lambda: "networkpype-outbox" not in kinds(), "the outbox tasks end")
        assert ws.connections == 4 and kinds() == ["networkpype-replay"]
        pacers = {shard.connection.pacer for shard in ws._shards}
        assert len(pacers) == 4 and None not in pacers  # one per connection
        # One shard closed for good: the others keep streaming.
        await ws.unsubscribe_topics([topics(4)[1]])
        assert ws.connections == 3
        assert census().get("ConnectionActor", 0) - before.get("ConnectionActor", 0) == 3
        # Every remaining shard heals on its own under the shared supervisor.
        assert sim.kill_all() == 3
        streams: set[str] = set()
        reconnected: set[str] = set()
        async with asyncio.timeout(5):
            async for item in ws.iter_messages(events=True):
                if isinstance(item, Reconnected):
                    reconnected.add(item.connection_id)
                elif isinstance(item, WebSocketResponse) and len(reconnected) == 3:
                    streams.add(item.data["stream"])
                    if len(streams) == 3:
                        break
        assert reconnected == {"shard1", "shard3", "shard4"}
        assert streams == {topics(4)[i] for i in (0, 2, 3)}
        assert (await ws.statistics()).connections[0].restarts == 1
        await ws.disconnect()
    assert census() == before


async def test_unsubscribed_topic_stays_unsubscribed_after_reconnects(
    factory: ConnectionManagersFactory,
) -> None:
    """One topic out of a batched SUBSCRIBE is unsubscribed: the replay after a reconnect
    subscribes the rest of the batch only. During a reconnection, unsubscribing works too
    (nothing to tell the venue; the topic is simply not replayed)."""
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(restart_policy=FAST)
        await ws.connect(sim.url)
        wanted = topics(4)
        assert (await ws.subscribe_topics(wanted)).rejected == {}
        assert [sorted(t) for t in sim.subscriptions.values() if t] == [sorted(wanted)]
        await ws.unsubscribe_topics([wanted[1]])

        def live() -> list[list[str]]:
            return [sorted(t) for t in sim.subscriptions.values() if t]

        await wait_until(lambda: live() == [sorted(wanted[i] for i in (0, 2, 3))], "unsubscribed")

        async def next_reconnect() -> None:
            async with asyncio.timeout(5):
                async for item in ws.iter_messages(events=True):
                    if isinstance(item, Reconnected):
                        return

        sim.kill_all()
        await next_reconnect()
        # The replay (one SUBSCRIBE) reaches the venue, without the unsubscribed topic.
        await wait_until(lambda: live() != [], "the replay acknowledged")
        assert live() == [sorted(wanted[i] for i in (0, 2, 3))]

        # Down: unsubscribing is only forgetting (NotConnectedError must not escape).
        sim.refuse_for(300 * MS)
        sim.kill_all()
        await wait_until(lambda: not ws.connected, "down")
        await ws.unsubscribe_topics([wanted[2]])
        assert ws.shard_of(wanted[2]) is None
        await next_reconnect()
        await wait_until(lambda: live() != [], "the replay acknowledged")
        assert live() == [sorted(wanted[i] for i in (0, 3))]
        await ws.disconnect()


async def test_churn_keeps_no_growing_ids_and_unsubscribe_replies_stay_out(
    factory: ConnectionManagersFactory,
) -> None:
    """Subscribing and unsubscribing for weeks holds no growing set of request ids, and the
    venue's replies to our UNSUBSCRIBE messages are not handed to the consumer."""
    async with ExchangeSimulator(rate=1.0, max_incoming_per_second=1000) as sim:
        ws = await factory.get_sharded_ws_manager(max_topics_per_connection=10)
        await ws.connect(sim.url)
        await ws.subscribe_topics(["keepusdt@trade"])
        acks = ws._acks
        base = len(acks)
        for n in range(30):
            churn = [f"c{n}x{i}usdt@trade" for i in range(3)]
            assert (await ws.subscribe_topics(churn)).rejected == {}
            await ws.unsubscribe_topics(churn[:2])  # a batch split: the rest re-recorded
            await ws.unsubscribe_topics(churn[2:])
        # The last unsubscribe replies are on their way.
        await wait_until(lambda: len(acks) <= base, "the unsubscribe replies")
        assert len(acks) == base
        assert [t for t in sim.subscriptions.values() if t] == [("keepusdt@trade",)]
        replies = []
        async with asyncio.timeout(3):
            async for item in ws.iter_messages():
                if "result" in item.data or "id" in item.data:
                    replies.append(item.data)
                elif item.data.get("stream") == "keepusdt@trade" and item.data["seq"] >= 2:
                    break
        assert replies == []
        await ws.disconnect()


async def test_a_slow_new_shard_holds_up_no_other_shards_recovery(
    factory: ConnectionManagersFactory,
) -> None:
    """One manager actor and one supervisor serve every shard: neither waits on a handshake
    in its inbox, so a shard still opening does not delay another one's restart and replay."""
    # Handshake 0: shard1; 1: shard2 (slow); 2: shard1's redial.
    async with SlowHandshakes(rate=50.0, delays={1: 2000 * MS}) as sim:
        ws = await factory.get_sharded_ws_manager(max_topics_per_connection=1, restart_policy=FAST)
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(["aaausdt@trade"])).rejected == {}
        opening = asyncio.create_task(ws.subscribe_topics(["bbbusdt@trade"]))
        await wait_until(lambda: sim.handshakes == 2, "shard2's handshake hanging")
        assert sim.kill_all() == 1  # shard1 drops
        order: list[str] = []
        async with asyncio.timeout(5):
            async for item in ws.iter_messages(events=True):
                if isinstance(item, Reconnected):
                    order.append(f"{item.connection_id} reconnected")
                elif isinstance(item, WebSocketResponse) and order:
                    order.append(f"{item.data['stream']} data")
                    break
        assert order == ["shard1 reconnected", "aaausdt@trade data"]
        assert not opening.done()  # shard2 was still opening all along
        assert (await opening).rejected == {}
        await ws.disconnect()


async def test_a_caller_giving_up_on_a_new_shard_leaves_no_connection(
    factory: ConnectionManagersFactory,
) -> None:
    """subscribe_topics() cancelled (here: timed out) while its new shard opens: the opening
    connection is dropped, not kept (and redialled) by the manager actor behind the
    sharded manager's back; and disconnect() does not wait for a hanging handshake."""
    from pykka import ActorRegistry

    before = len(ActorRegistry.get_all())
    async with SlowHandshakes(rate=20.0, delays={1: 500 * MS, 2: 3000 * MS}) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1, restart_policy=FAST, min_send_interval=0.01
        )
        await ws.connect(sim.url)
        await ws.subscribe_topics(["aaausdt@trade"])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.subscribe_topics(["bbbusdt@trade"]), 100 * MS)
        await asyncio.sleep(600 * MS)  # the slow handshake has been answered by now
        assert ws.connections == 1 and sim.connections_active == 1
        assert await ws._actor.proxy().restarts() == {"shard1": 0}  # type: ignore[union-attr]
        # A handshake that hangs for 3 s does not hold up disconnect().
        hanging = asyncio.create_task(ws.subscribe_topics(["cccusdt@trade"]))
        await wait_until(lambda: sim.handshakes == 3, "the third handshake hanging")
        async with asyncio.timeout(2):
            await ws.disconnect()
        with pytest.raises((asyncio.CancelledError, ConnectionError)):
            await hanging
    assert len(ActorRegistry.get_all()) == before


def _every_failure_is_fatal(error: BaseException) -> Verdict:
    return Verdict(Kind.FATAL, None, f"test policy: give up on {type(error).__name__}")


# Tuned: a shard's first failure escalates. (max_restarts=0 no longer does for a shard that
# served data: its restart is not counted towards the intensity.)
GIVE_UP_AT_ONCE = RestartPolicy(classifier=_every_failure_is_fatal)


async def test_a_shard_given_up_ends_the_stream_closes_the_others_and_can_start_over(
    factory: ConnectionManagersFactory,
) -> None:
    """on_shard_gave_up="stop" (the old behaviour): the merged stream ends with GaveUpError
    when one shard's supervisor gives up; the other shards close with it instead of streaming
    into a queue nobody reads."""
    policy = GIVE_UP_AT_ONCE
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=1, restart_policy=policy, on_shard_gave_up="stop"
        )
        await ws.connect(sim.url, ping_interval=0.05, pong_timeout=0.1)
        assert (await ws.subscribe_topics(["aaausdt@trade", "bbbusdt@trade"])).rejected == {}
        first = next(cid for cid, ts in sim.subscriptions.items() if ts == ("aaausdt@trade",))
        sim.stall(first)  # half-open: liveness gives up on shard1, shard2 is healthy
        with pytest.raises(GaveUpError, match="shard1"):
            async with asyncio.timeout(5):
                async for _ in ws.iter_messages():
                    pass
        await wait_until(lambda: not sim.connections_active, "every connection closed")
        states = {c.connection_id: c.state for c in (await ws.statistics()).connections}
        assert states == {"shard1": "down", "shard2": "down"}
        # Starting over: disconnect(), connect() again, subscribe; a new merged stream.
        await ws.disconnect()
        await ws.connect(sim.url)
        assert (await ws.subscribe_topics(["cccusdt@trade"])).rejected == {}
        streams = []
        async with asyncio.timeout(3):
            async for message in ws.iter_messages():
                streams.append(message.data["stream"])
                break
        assert streams == ["cccusdt@trade"]
        assert ws.connections == 1 and ws.shard_of("aaausdt@trade") is None
        await ws.disconnect()


async def two_shards(
    factory: ConnectionManagersFactory, sim: ExchangeSimulator
) -> ShardedWebSocketManager:
    """A sharded manager with default settings but GIVE_UP_AT_ONCE and fast liveness:
    aaausdt@trade on shard1, bbbusdt@trade on shard2; a stalled shard is given up on within
    ~0.15 s."""
    ws = await factory.get_sharded_ws_manager(
        max_topics_per_connection=1, restart_policy=GIVE_UP_AT_ONCE
    )
    await ws.connect(sim.url, ping_interval=0.05, pong_timeout=0.1)
    assert (await ws.subscribe_topics(["aaausdt@trade", "bbbusdt@trade"])).rejected == {}
    return ws


def stall_topic(sim: ExchangeSimulator, topic: str) -> None:
    sim.stall(next(cid for cid, ts in sim.subscriptions.items() if ts == (topic,)))


async def test_a_shard_given_up_leaves_the_others_streaming_by_default(
    factory: ConnectionManagersFactory,
) -> None:
    """Default on_shard_gave_up="continue": the merged stream carries a GaveUp event naming
    the lost shard and its topics, then goes on with the other shard's data; the lost shard
    is forgotten (listed as gave_up), and a topic subscribed again goes to a new shard."""
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await two_shards(factory, sim)
        stall_topic(sim, "aaausdt@trade")
        gave_up: GaveUp | None = None
        after: list[str] = []
        async with asyncio.timeout(5):
            async for item in ws.iter_messages(events=True):
                if isinstance(item, GaveUp):
                    gave_up = item
                elif gave_up is not None and isinstance(item, WebSocketResponse):
                    after.append(item.data["stream"])
                    if len(after) == 10:
                        break
        assert gave_up is not None and gave_up.connection_id == "shard1"
        assert gave_up.topics == ("aaausdt@trade",) and "shard1" in gave_up.cause
        assert after == ["bbbusdt@trade"] * 10
        assert ws.connections == 1 and ws.shard_of("aaausdt@trade") is None
        stats = await ws.statistics()
        assert {c.connection_id: c.state for c in stats.connections} == {
            "shard2": "open",
            "shard1": "gave_up",
        }
        assert [s.topic for s in stats.subscriptions] == ["bbbusdt@trade"]
        # Subscribed again, the lost topic goes to a live shard with room, or a new one.
        assert (await ws.subscribe_topics(["aaausdt@trade"])).rejected == {}
        assert ws.shard_of("aaausdt@trade") == "shard3"
        async with asyncio.timeout(3):
            async for message in ws.iter_messages():
                if message.data["stream"] == "aaausdt@trade":
                    break
        await ws.disconnect()


async def test_a_lost_topics_stream_ends_with_gave_up_error_the_others_go_on(
    factory: ConnectionManagersFactory,
) -> None:
    """Default on_shard_gave_up="continue": the per-topic stream of a lost topic gets the
    GaveUp event, then ends with the GaveUpError; another shard's stream goes on."""
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await two_shards(factory, sim)
        lost, kept = ws.stream("aaausdt@trade"), ws.stream("bbbusdt@trade")
        kept_messages = 0

        async def read_kept() -> None:
            nonlocal kept_messages
            async for item in kept:
                assert not isinstance(item, GaveUp)
                if isinstance(item, WebSocketResponse):
                    kept_messages += 1

        reader = asyncio.create_task(read_kept())
        stall_topic(sim, "aaausdt@trade")
        items: list[Any] = []
        with pytest.raises(GaveUpError, match="shard1"):
            async with asyncio.timeout(5):
                async for item in lost:
                    items.append(item)
        assert isinstance(items[-1], GaveUp) and items[-1].topics == ("aaausdt@trade",)
        ended_at = kept_messages
        await wait_until(lambda: kept_messages >= ended_at + 10, "the kept stream goes on")
        assert not reader.done()
        await ws.disconnect()
        await asyncio.wait_for(reader, 2)  # disconnect() ends it


async def test_the_last_shard_given_up_ends_the_stream_by_default(
    factory: ConnectionManagersFactory,
) -> None:
    """With no shard left alive, the merged stream ends with GaveUpError after the GaveUp
    event, as a WebSocketManager's does."""
    async with ExchangeSimulator(rate=50.0) as sim:
        ws = await factory.get_sharded_ws_manager(restart_policy=GIVE_UP_AT_ONCE)
        await ws.connect(sim.url, ping_interval=0.05, pong_timeout=0.1)
        assert (await ws.subscribe_topics(["aaausdt@trade"])).rejected == {}
        stall_topic(sim, "aaausdt@trade")
        events: list[Any] = []
        with pytest.raises(GaveUpError, match="shard1"):
            async with asyncio.timeout(5):
                async for item in ws.iter_messages(events=True):
                    if not isinstance(item, WebSocketResponse):
                        events.append(item)
        assert isinstance(events[-1], GaveUp) and events[-1].topics == ("aaausdt@trade",)
        await ws.disconnect()


async def test_on_shard_gave_up_names_the_allowed_values(
    factory: ConnectionManagersFactory,
) -> None:
    from networkpype.actors.manager import ManagerSettings

    with pytest.raises(
        ConfigurationError, match="on_shard_gave_up='ignore': use one of continue, stop"
    ):
        await factory.get_sharded_ws_manager(on_shard_gave_up="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="continue, stop"):
        ManagerSettings(on_connection_gave_up="restart")  # type: ignore[arg-type]


class CloseCodes(ExchangeSimulator):
    """The simulator, recording the close code of each connection that ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closes: list[int | None] = []

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = await super()._handle_ws(request)
        assert isinstance(ws, web.WebSocketResponse)
        self.closes.append(ws.close_code)
        return ws


async def test_disconnect_closes_every_shard_with_the_callers_code(
    factory: ConnectionManagersFactory,
) -> None:
    async with CloseCodes(rate=2.0) as sim:
        ws = await factory.get_sharded_ws_manager(
            codec=BinanceCodec(max_topics_per_message=50), max_topics_per_connection=2
        )
        await ws.connect(sim.url)
        result = await ws.subscribe_topics(topics(6))
        assert len(result.accepted) == 6 and ws.connections == 3
        with pytest.raises(ConfigurationError, match="1005"):
            await ws.disconnect(code=1005)  # no endpoint may send it: nothing is closed
        assert ws.connections == 3
        await ws.disconnect(code=4001, reason="maintenance")
        await wait_until(lambda: len(sim.closes) == 3, "every shard's connection ended")
        assert sim.closes == [4001] * 3
        await ws.disconnect()  # idempotent


async def test_no_shard_opens_while_disconnect_is_under_way(
    factory: ConnectionManagersFactory,
) -> None:
    # A subscription that needs a new shard, made while disconnect() runs, must not start
    # a manager of its own: it would outlive the disconnect, feeding the ended stream.
    async with ExchangeSimulator(rate=20.0) as sim:
        ws = await factory.get_sharded_ws_manager(max_topics_per_connection=2)
        await ws.connect(sim.url)
        await ws.subscribe_topics(topics(2))
        disconnecting = asyncio.get_running_loop().create_task(ws.disconnect())
        await asyncio.sleep(0)  # disconnect() has begun, and waits
        with pytest.raises(ConnectAbortedError, match="disconnect"):
            await ws.subscribe_topics(topics(3)[2:])
        await disconnecting
        assert ws._actor is None and ws.connections == 0  # no manager actor left
        await ws.connect(sim.url)  # starts over, and streams
        await ws.subscribe_topics(topics(1))
        async with asyncio.timeout(WAIT):
            async for message in ws.iter_messages():
                assert message.data["stream"] == topics(1)[0]
                break
        await ws.disconnect()

