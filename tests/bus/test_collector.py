"""Collectors in this process against the exchange simulator and a real nats-server: what
they publish, gap records in order, and a hot standby stored once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from networkpype.bus import (
    BusConsumer,
    BusResponse,
    Collector,
    CollectorSettings,
    LeaseSettings,
    PartitionReleased,
    SequenceGap,
    StreamSettings,
)
from networkpype.bus.server import LocalNatsServer
from networkpype.cli.demo_plan import demo_topics
from networkpype.demo.exchange import ExchangeSimulator
from networkpype.protocol.events import Disconnected, MessagesDropped, Reconnected
from tests.timing import WAIT, wait_until

TOPICS = tuple(demo_topics(20))
STREAM = StreamSettings(name="T")


@contextlib.asynccontextmanager
async def _collectors(
    server: LocalNatsServer,
    venue: ExchangeSimulator,
    *names: str,
    replicas: int = 1,
    topics: tuple[str, ...] = TOPICS,
    partitions: int = 2,
) -> AsyncIterator[list[Collector]]:
    collectors = [
        Collector(
            CollectorSettings(
                venue="sim",
                url=f"ws://127.0.0.1:{venue.port}/ws",
                topics=topics,
                collector_id=name,
                nats_urls=(server.url,),
                stream=STREAM,
                leases=LeaseSettings(
                    partitions=partitions,
                    replicas=replicas,
                    ttl=1.0,
                    renew_interval=0.2,
                    settle=0.3,
                ),
                manager_options={"max_topics_per_connection": 8},
            )
        )
        for name in names
    ]
    tasks = [asyncio.get_running_loop().create_task(c.run()) for c in collectors]
    try:
        yield collectors
    finally:
        for c in collectors:
            c.stop()
        async with asyncio.timeout(15):
            await asyncio.gather(*tasks)


async def test_data_per_topic_and_gap_records_in_order(nats_server: LocalNatsServer) -> None:
    async with (
        ExchangeSimulator(rate=50.0, lifetime=60.0) as venue,
        _collectors(nats_server, venue, "c1") as (collector,),
    ):
        consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
        await consumer.connect()
        items: list[object] = []
        last_data: dict[str, int] = {}
        killed_at = reconnected_at = -1
        try:
            async with asyncio.timeout(30):
                async for item in consumer.iter_messages(events=True):
                    items.append(item)
                    if isinstance(item, BusResponse):
                        last_data[item.topic] = len(items) - 1
                    elif isinstance(item, Reconnected) and killed_at >= 0:
                        reconnected_at = len(items) - 1
                    if killed_at < 0 and len(last_data) == len(TOPICS):
                        # Every connection reset (TCP RST), and the venue refuses handshakes
                        # (429, Retry-After: 1) for a second: the feeds go on meanwhile.
                        venue.refuse_for(1.0)
                        assert venue.kill_all() > 0
                        killed_at = len(items) - 1
                    if reconnected_at >= 0 and all(
                        i > reconnected_at for i in last_data.values()
                    ):
                        break
        finally:
            await consumer.disconnect()
        stats = collector.statistics()
    assert stats.publisher.dropped == 0 and stats.skipped == 0
    kinds = [type(i).__name__ for i in items]
    first_data = kinds.index("BusResponse")
    assert kinds[:first_data].count("PartitionAcquired") >= 1  # before any message
    assert kinds.count("PartitionAcquired") == 2  # two partitions: each shown once
    down = kinds.index("Disconnected")
    assert "SequenceGap" in kinds  # the venue went on while the connections were down
    assert down > killed_at and kinds.index("Reconnected", down) > down
    record = items[down]
    assert isinstance(record, Disconnected) and record.connection_id.startswith("c1/shard")
    for i, item in enumerate(items):
        if isinstance(item, SequenceGap):
            # Announced after the Disconnected, just before the message after the hole,
            # with exactly what is missing.
            assert i > down
            after = items[i + 1]
            assert isinstance(after, BusResponse) and after.topic == item.topic
            assert after.seq == item.after + item.missed + 1
    for topic in TOPICS:
        data = [i for i in items if isinstance(i, BusResponse) and i.topic == topic]
        assert all(m.data["stream"] == topic and m.data["seq"] == m.seq for m in data)
        seqs = [m.seq for m in data if m.seq is not None]
        assert len(seqs) == len(data)  # every message numbered
        assert seqs == sorted(set(seqs))  # in order, no duplicate


async def test_a_hot_standby_is_stored_once(nats_server: LocalNatsServer) -> None:
    async with (
        ExchangeSimulator(rate=50.0, lifetime=60.0) as venue,
        _collectors(nats_server, venue, "c1", "c2", replicas=2) as collectors,
    ):
        consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
        await consumer.connect()
        got: list[tuple[str, int | None]] = []
        try:
            async with asyncio.timeout(30):
                async for item in consumer.iter_messages():
                    got.append((item.topic, item.seq))
                    if len(got) == 2000:
                        break
        finally:
            await consumer.disconnect()
        stats = [c.statistics() for c in collectors]
    assert all(s.topics == len(TOPICS) for s in stats)  # both serve every partition
    assert len(set(got)) == len(got)  # each venue event once
    assert sum(s.publisher.duplicates for s in stats) > 500  # the standby's copies collapsed


async def test_a_release_under_a_hot_standby_names_the_replica_that_goes_on(
    nats_server: LocalNatsServer,
) -> None:
    async with (
        ExchangeSimulator(rate=50.0, lifetime=60.0) as venue,
        _collectors(nats_server, venue, "c1", "c2", replicas=2) as (c1, c2),
    ):
        await wait_until(
            lambda: c1.statistics().topics == c2.statistics().topics == len(TOPICS), "serving"
        )
        keeper = c1._keeper  # its renewal ticks have seen c2's slots of both partitions
        assert keeper is not None
        await wait_until(lambda: all(keeper.others_serving(p) == ("c2",) for p in (0, 1)))
        c1.stop()  # c2 goes on
        consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
        await consumer.connect()
        released: dict[int, PartitionReleased] = {}
        try:
            async with asyncio.timeout(WAIT):
                async for item in consumer.iter_messages(events=True):
                    if isinstance(item, PartitionReleased):
                        released[item.partition] = item
                        if len(released) == 2:
                            break
        finally:
            await consumer.disconnect()
    assert sorted(released) == [0, 1]
    assert {(r.collector_id, r.others) for r in released.values()} == {("c1", ("c2",))}


async def test_a_topic_not_served_publishes_no_more_data_after_its_record(
    nats_server: LocalNatsServer,
) -> None:
    topic = TOPICS[0]
    async with (
        ExchangeSimulator(rate=50.0, lifetime=60.0) as venue,
        _collectors(nats_server, venue, "c1") as (collector,),
    ):
        await wait_until(lambda: collector.statistics().publisher.published > 100, "data")
        # What a TopicsLost from the manager does (the venue never answered the topic's
        # replay), while the venue in fact goes on sending it.
        collector._not_served({topic: "no acknowledgement of the replay"})
        skipped = collector.statistics().skipped
        await wait_until(lambda: collector.statistics().skipped > skipped + 5, "its data skipped")
        consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
        await consumer.connect()
        after: list[object] = []
        try:
            items = consumer.stream(topic)
            async with asyncio.timeout(WAIT):
                async for item in items:
                    if isinstance(item, PartitionReleased):
                        assert item.cause == "no acknowledgement of the replay"
                        break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):  # the venue sends it 50 times a second
                    after.append(await anext(items))
        finally:
            await consumer.disconnect()
    assert after == []  # nothing of it published after the record


async def test_a_venue_that_cannot_be_reached_hands_the_partitions_back(
    nats_server: LocalNatsServer,
) -> None:
    collector = Collector(
        CollectorSettings(
            venue="sim",
            url="ws://127.0.0.1:9/ws",  # nobody listens: every handshake fails
            topics=TOPICS,
            collector_id="c1",
            nats_urls=(nats_server.url,),
            stream=STREAM,
            leases=LeaseSettings(partitions=2, ttl=1.0, renew_interval=0.2, settle=0.2),
        )
    )
    task = asyncio.get_running_loop().create_task(collector.run())
    try:
        await wait_until(lambda: collector.statistics().leases.lost >= 2, "2 leases lost")
        assert not task.done()  # the collector goes on, and tries again at later ticks
    finally:
        collector.stop()
        async with asyncio.timeout(15):
            await task


async def test_a_clean_stop_publishes_partition_released_after_the_last_data(
    nats_server: LocalNatsServer,
) -> None:
    async with ExchangeSimulator(rate=50.0, lifetime=60.0) as venue:
        async with _collectors(nats_server, venue, "c1") as (collector,):
            await wait_until(lambda: collector.statistics().topics == len(TOPICS), "serving")
            await wait_until(lambda: collector.statistics().publisher.published > 100, "data")
        consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
        await consumer.connect()
        try:
            kinds: list[str] = []
            async with asyncio.timeout(WAIT):
                async for item in consumer.iter_messages(events=True):
                    kinds.append(type(item).__name__)
                    if kinds.count("PartitionReleased") == 2:
                        break
        finally:
            await consumer.disconnect()
    # Both partitions released (each record shown once), the last after every message.
    last = len(kinds) - 1 - kinds[::-1].index("PartitionReleased")
    assert "BusResponse" in kinds and "BusResponse" not in kinds[last:]


def test_messages_dropped_is_published_on_every_topic_served() -> None:
    """The manager's MessagesDropped could be any topic's: each topic served gets the
    record (a book following one topic must hear of it), not the control subject alone."""
    collector = Collector(
        CollectorSettings(venue="sim", url="ws://127.0.0.1:9/ws", topics=TOPICS, stream=STREAM)
    )
    collector._serving = {topic: 0 for topic in TOPICS[:3]}
    collector._event(MessagesDropped(connection_id="*", at=0.0, count=5))
    assert collector.statistics().records == 3
    assert collector.statistics().publisher.buffered == 3
