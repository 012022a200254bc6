"""Order books fed from the bus: the exchange simulator's depth venue, an in-process collector
publishing to a real nats-server, and a maintainer reading ``BusConsumer.stream(topic)``
(snapshots over REST from the venue), audited against the venue's ground truth."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from networkpype.books import (
    BinanceSpotRules,
    BookEvent,
    BookInvalid,
    BookResynced,
    OrderBookMaintainer,
    StreamBreak,
)
from networkpype.bus import (
    BusConsumer,
    BusDiffSource,
    PartitionAcquired,
    PartitionReleased,
    PublishDropped,
    SequenceGap,
    records,
)
from networkpype.bus._nats import connect
from networkpype.bus.books import as_break
from networkpype.bus.records import BusRecord
from networkpype.bus.server import LocalNatsServer
from networkpype.demo.book_audit import BookAudit
from networkpype.demo.depth_venue import DepthVenue
from networkpype.demo.exchange import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.events import Connected, GaveUp, MessagesDropped, RotationFinished
from networkpype.throttler.throttler import AsyncThrottler
from tests.bus.test_collector import STREAM, _collectors
from tests.timing import WAIT, wait_until

SYMBOLS = ("B0USDT", "B1USDT", "B2USDT", "B3USDT")
RULES = BinanceSpotRules(limit=100)
TOPICS = tuple(RULES.topic(s) for s in SYMBOLS)


async def _publish_record(
    server: LocalNatsServer, topic: str, record: BusRecord, msg_id: str = "test-record"
) -> None:
    """Publish ``record`` on ``topic``'s subject, as a collector does."""
    nc = await connect((server.url,), name="test-records", deadline=5.0)
    try:
        headers = {records.HEADER_MSG_ID: msg_id, records.HEADER_KIND: records.KIND_RECORD}
        subject = records.subject_for(STREAM.prefix, "sim", topic)
        await nc.jetstream().publish(subject, records.encode_record(record), headers=headers)
    finally:
        await nc.close()


async def _collect(maintainer: OrderBookMaintainer, into: list[BookEvent]) -> None:
    async for event in maintainer.events():
        into.append(event)


@contextlib.asynccontextmanager
async def _bus_books(
    server: LocalNatsServer, venue: ExchangeSimulator, audit: BookAudit, events: list[BookEvent]
) -> AsyncIterator[OrderBookMaintainer]:
    """A started maintainer of SYMBOLS' books read from the bus, snapshots over REST from
    ``venue`` (its weights in the throttler), every update of a valid book audited, the
    events collected into ``events``."""
    consumer = BusConsumer("sim", nats_urls=(server.url,), stream=STREAM, deliver="new")
    factory = ConnectionManagersFactory(
        throttler=AsyncThrottler(RULES.rate_limits(600, 1.0, latency_guard=0.25))
    )
    try:
        await consumer.connect()
        rest = await factory.get_rest_manager()
        books = OrderBookMaintainer(
            BusDiffSource(consumer),
            rest,
            RULES,
            f"http://127.0.0.1:{venue.port}",
            on_update=audit.check,
        )
        async with books, asyncio.TaskGroup() as tasks:
            reader = tasks.create_task(_collect(books, events))
            assert await books.add(SYMBOLS) == {}
            yield books
            reader.cancel()
    finally:
        await consumer.disconnect()
        await factory.close()


def _broken(events: list[BookEvent], because: str) -> set[str]:
    return {e.symbol for e in events if isinstance(e, BookInvalid) and because in e.reason}


def _venue() -> ExchangeSimulator:
    depth = DepthVenue(levels=20, rest_weight_limit=600, rest_weight_window=1.0)
    return ExchangeSimulator(rate=50.0, depth=depth)


async def test_books_from_the_bus_follow_the_venue_and_resync_after_every_gap(
    nats_server: LocalNatsServer,
) -> None:
    events: list[BookEvent] = []
    async with (
        _venue() as venue,
        _collectors(nats_server, venue, "c1", topics=TOPICS, partitions=1) as (first,),
    ):
        audit = BookAudit(venue.depth)
        async with _bus_books(nats_server, venue, audit, events) as books:
            await books.wait_valid(timeout=WAIT)
            assert books.statistics().snapshots_requested >= len(SYMBOLS)

            # Diffs the venue never sent: the consumer's SequenceGap, before the diff after
            # them, breaks the book; it resyncs by itself.
            venue.depth.drop_diffs("B1USDT", 3)
            await wait_until(lambda: books.book("B1USDT").resyncs == 1, "B1 resynced")
            assert _broken(events, "") == _broken(events, "not on the bus") == {"B1USDT"}

            # A collector's manager dropped messages (any topic's): the MessagesDropped
            # record on a topic breaks its book.
            mark = len(events)
            dropped = MessagesDropped(connection_id="*", at=0.0, count=5)
            await _publish_record(nats_server, TOPICS[2], dropped)
            await wait_until(lambda: books.book("B2USDT").resyncs == 1, "B2 resynced")
            assert _broken(events[mark:], "") == _broken(events[mark:], "dropped") == {"B2USDT"}

            # The collector's venue connection reset: its Disconnected record on the bus
            # breaks every book.
            mark = len(events)
            assert venue.kill_all() > 0
            await wait_until(
                lambda: _broken(events[mark:], "disconnected") == set(SYMBOLS),
                "every book broken by the reset",
            )
            await books.wait_valid(timeout=WAIT)

            # The collector stops (its partition released): every book is not valid at once;
            # a second collector takes the partition over and the books resync.
            mark = len(events)
            first.stop()
            await wait_until(
                lambda: _broken(events[mark:], "released partition") == set(SYMBOLS),
                "every book broken by the release",
            )
            assert all(b.top() is None for b in books.books())
            async with _collectors(nats_server, venue, "c2", topics=TOPICS, partitions=1):
                await books.wait_valid(timeout=3 * WAIT)
                resynced = {e.symbol for e in events[mark:] if isinstance(e, BookResynced)}
                assert resynced == set(SYMBOLS)
        assert audit.checks > 0
        assert audit.served_wrong == 0, audit.mismatches
        assert venue.depth.rest_violations == 0


async def test_a_killed_collector_s_books_resync_after_the_take_over(
    nats_server: LocalNatsServer,
) -> None:
    """A collector process SIGKILLed publishes nothing; the successor that takes its lease
    over publishes the topics again after a hole, and the consumer's SequenceGap breaks
    every book before the first diff after it; they resync; none is ever served wrong."""
    events: list[BookEvent] = []
    async with _venue() as venue:
        argv = [
            *("-m", "networkpype", "collect", venue.url, "--topics", ",".join(TOPICS)),
            *("--id", "doomed", "--partitions", "1", "--lease-ttl", "1", "--venue", "sim"),
            *("--nats", nats_server.url, "--stream", STREAM.name, "--prefix", STREAM.prefix),
        ]
        doomed = await asyncio.create_subprocess_exec(sys.executable, *argv)
        audit = BookAudit(venue.depth)
        try:
            async with _bus_books(nats_server, venue, audit, events) as books:
                await books.wait_valid(timeout=3 * WAIT)
                async with _collectors(nats_server, venue, "heir", topics=TOPICS, partitions=1):
                    mark = len(events)
                    doomed.kill()
                    await doomed.wait()
                    await wait_until(
                        lambda: _broken(events[mark:], "not on the bus") == set(SYMBOLS),
                        "every book broken by the hole",
                    )
                    await books.wait_valid(timeout=WAIT)
        finally:
            if doomed.returncode is None:
                doomed.kill()
                await doomed.wait()
        assert audit.checks > 0
        assert audit.served_wrong == 0, audit.mismatches


def test_what_each_record_means_to_a_book() -> None:
    """Records that may hide missing diffs break the book; the others do not."""
    breaking = [
        SequenceGap(at=0.0, topic="t", after=7, missed=2),
        PublishDropped(at=0.0, topic="t", collector_id="c", count=5),
        GaveUp(connection_id="c/s0", at=0.0, cause="too many failures", topics=("t",)),
        PartitionReleased(at=0.0, partition=0, collector_id="c", cause="shutdown"),
    ]
    for record in breaking:
        broken = as_break("t", record)
        assert isinstance(broken, StreamBreak) and broken.topic == "t", record
    harmless = [
        PartitionAcquired(at=0.0, partition=0, collector_id="c"),
        # A hot standby goes on publishing the partition.
        PartitionReleased(at=0.0, partition=0, collector_id="c", cause="stop", others=("d",)),
        Connected(connection_id="c/s0", at=0.0, url="ws://127.0.0.1:1/ws"),
        RotationFinished(connection_id="c/s0", at=0.0, replacement="c/s1"),
    ]
    assert [as_break("t", r) for r in harmless] == [None] * len(harmless)
    # ... unless every other replica has been seen releasing it too.
    last = PartitionReleased(at=0.0, partition=0, collector_id="d", cause="stop", others=("c",))
    assert isinstance(as_break("t", last, gone={"c"}), StreamBreak)


async def test_a_hot_standby_s_release_breaks_no_book_until_every_replica_is_gone(
    nats_server: LocalNatsServer,
) -> None:
    topic = "standby@depth"  # a topic of this test alone
    consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
    await consumer.connect()
    try:
        stream = BusDiffSource(consumer).stream(topic)
        sequence: list[BusRecord] = [
            # A rolling restart: c1 stops while c2 serves (no break), comes back ...
            PartitionReleased(
                at=1.0, partition=0, collector_id="c1", cause="restart", others=("c2",)
            ),
            PartitionAcquired(at=2.0, partition=0, collector_id="c1", replica=0),
            # ... then c2 stops while c1 serves (no break) ...
            PartitionReleased(
                at=3.0, partition=0, collector_id="c2", cause="restart", others=("c1",)
            ),
            # ... and c1 stops too: nobody serves the partition any more.
            PartitionReleased(
                at=4.0, partition=0, collector_id="c1", cause="shutdown", others=("c2",)
            ),
        ]
        for n, record in enumerate(sequence):
            await _publish_record(nats_server, topic, record, msg_id=f"standby-{n}")
        async with asyncio.timeout(WAIT):
            first = await anext(stream)
        assert isinstance(first, StreamBreak) and first.topic == topic
        assert first.reason == "collector c1 released partition 0: shutdown"  # the last one
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        await consumer.disconnect()


async def test_a_topic_the_venue_rejects_breaks_its_book_instead_of_waiting_for_ever(
    nats_server: LocalNatsServer,
) -> None:
    # The collector holds the partition but the venue refuses one of its topics: nothing
    # will be published for it, and its book must hear so (before, nothing was published
    # at all, and the book waited for diffs for ever).
    bad = "zzzusdt@bogus"  # a topic of unknown format: the simulator's code 2
    topics = (*TOPICS, bad)
    async with (
        ExchangeSimulator(rate=5.0, lifetime=60.0) as venue,
        _collectors(nats_server, venue, "c1", topics=topics) as (collector,),
    ):
        consumer = BusConsumer("sim", nats_urls=(nats_server.url,), stream=STREAM)
        await consumer.connect()
        try:
            stream = BusDiffSource(consumer).stream(bad)
            async with asyncio.timeout(WAIT):
                first = await anext(stream)
            assert isinstance(first, StreamBreak) and first.topic == bad
            assert "subscription rejected" in first.reason  # with the venue's own reason:
            assert "unknown stream format" in first.reason
            await stream.aclose()  # type: ignore[attr-defined]
            assert collector.statistics().topics < len(topics)  # not counted as served
        finally:
            await consumer.disconnect()

