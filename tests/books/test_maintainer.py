"""OrderBookMaintainer over the exchange simulator: every update of every valid book is
checked against the simulator's ground truth (``BookAudit``), through resets, dropped
diffs, stale snapshots, refused subscriptions and a mass reset within REST weights."""

from __future__ import annotations

import asyncio
import time

import pytest

from networkpype.books import (
    BinanceSpotRules,
    BookInvalid,
    BookResynced,
    BookSettings,
    BookStatus,
    OrderBookMaintainer,
    SequencedChecksumRules,
    UnknownBookError,
)
from networkpype.books.events import BookEvent
from networkpype.protocol.errors import ConfigurationError, UnknownRateLimitError
from networkpype.throttler.rate_limit import RateLimit
from tests.books.helpers import Books, one_topic_per_message, rest_url, simulated_books
from tests.timing import MS, wait_until

SYMBOLS = [f"B{i}USDT" for i in range(6)]
WAIT = 10_000 * MS  # an upper bound for any resync on loopback


async def collect(books: Books, into: list[BookEvent]) -> None:
    async for event in books.maintainer.events():
        into.append(event)


async def until_none_valid(books: Books) -> None:
    # every book hears of the break from its stream
    await wait_until(lambda: not any(b.valid for b in books.maintainer.books()), "none valid")


def assert_audited(books: Books) -> None:
    audit = books.audit
    assert audit.checks > 0
    assert audit.served_wrong == 0, audit.mismatches


async def test_books_sync_follow_the_venue_and_read_cheaply() -> None:
    async with simulated_books() as books:
        m = books.maintainer
        assert await m.add([*SYMBOLS, "b0usdt"]) == {}  # case-insensitive, once each
        assert m.symbols == tuple(SYMBOLS)
        await m.wait_valid(timeout=WAIT)
        await wait_until(lambda: books.audit.checks > 6 * 5, "each book checked at updates")
        book = m.book("b1usdt")
        assert book.valid and book.status is BookStatus.VALID and book.reason == ""
        top, depth = book.top(), book.depth(3)
        assert top is not None and depth is not None
        assert top.bid == book.order_book.best_bid() and top.ask == depth.asks[0]
        assert top.bid is not None and top.ask is not None and top.spread == top.ask[0] - top.bid[0]
        assert len(depth.bids) == 3 and depth.bids[0][0] > depth.bids[1][0] > depth.bids[2][0]
        assert top.update_id == depth.update_id == book.update_id
        stats = m.statistics()
        assert (stats.books, stats.valid, stats.resyncs) == (6, 6, 0)
        assert stats.snapshots_requested >= 6 and stats.snapshot_failures == 0
        assert {s.status for s in stats.states} == {"valid"} and stats.states[0].levels > 0
        assert books.audit.checks > 6 * 5  # each book checked at every update
        assert_audited(books)
    assert not book.valid and book.top() is None  # a closed maintainer serves nothing


async def test_a_reset_invalidates_at_once_and_each_book_resyncs() -> None:
    events: list[BookEvent] = []
    async with simulated_books() as books, asyncio.TaskGroup() as tasks:
        m = books.maintainer
        collector = tasks.create_task(collect(books, events))
        await m.add(SYMBOLS)
        await m.wait_valid(timeout=WAIT)
        assert books.sim.kill_all() >= 1
        await until_none_valid(books)
        assert all(b.top() is None and b.depth(5) is None for b in m.books())
        assert all(b.reason and b.invalid_for >= 0 for b in m.books())
        await m.wait_valid(timeout=WAIT)
        await wait_until(lambda: len(events) >= 3 * len(SYMBOLS), "3 events a book")
        collector.cancel()
    by_symbol: dict[str, list[BookEvent]] = {}
    for event in events:
        by_symbol.setdefault(event.symbol, []).append(event)
    for symbol in SYMBOLS:
        kinds = [type(e) for e in by_symbol[symbol]]
        assert kinds == [BookResynced, BookInvalid, BookResynced], kinds
        first, invalid, again = by_symbol[symbol]
        assert isinstance(first, BookResynced) and first.first
        assert isinstance(invalid, BookInvalid) and "disconnected" in invalid.reason
        assert isinstance(again, BookResynced) and not again.first and again.resyncs == 1
        assert 0 < again.invalid_for < WAIT and again.update_id > invalid.update_id
    assert_audited(books)


async def test_dropped_diffs_and_stale_snapshots_are_caught() -> None:
    async with simulated_books() as books:
        m, depth = books.maintainer, books.sim.depth
        await m.add(SYMBOLS)
        await m.wait_valid(timeout=WAIT)
        depth.stale_snapshots(5, count=4)  # the next four snapshots lag the stream
        depth.drop_diffs("B2USDT", 3)
        depth.drop_diffs("B4USDT", 1)
        await wait_until(
            lambda: depth.stale_served >= 2 and all(b.valid for b in m.books()),
            "two stale snapshots served, then every book valid",
        )
        states = {s.symbol: s for s in m.statistics().states}
        assert states["B2USDT"].breaks == 1 and states["B4USDT"].breaks == 1
        assert states["B2USDT"].stale_snapshots + states["B4USDT"].stale_snapshots >= 2
        assert states["B0USDT"].breaks == 0
        assert_audited(books)


async def test_the_checksum_plug_in_against_the_simulator() -> None:
    rules = SequencedChecksumRules(limit=100, limit_id="api/v3/depth", weight=5)
    async with simulated_books(rules=rules, ids="sequence") as books:
        m = books.maintainer
        await m.add(SYMBOLS[:3])
        await m.wait_valid(timeout=WAIT)
        books.sim.depth.drop_diffs("B1USDT", 2)
        books.sim.kill_all()
        await until_none_valid(books)
        await m.wait_valid(timeout=WAIT)
        await asyncio.sleep(200 * MS)  # served a while: the audit would see a wrong book
        assert m.book("B1USDT").resyncs >= 1
        assert_audited(books)


async def test_a_mass_reset_resyncs_every_book_within_the_rest_weights() -> None:
    """25 books, snapshots of weight 5 within 60 weight a second (12 snapshots/s): after a
    reset of every connection the snapshots are paced, the venue counts no violation."""
    symbols = [f"M{i}USDT" for i in range(25)]
    settings = BookSettings(snapshot_concurrency=8)
    async with simulated_books(weight=(60, 1.0), settings=settings) as books:
        m = books.maintainer
        await m.add(symbols)
        await m.wait_valid(timeout=WAIT)
        await asyncio.sleep(1100 * MS)  # the initial snapshots leave the venue's 1 s window
        started = asyncio.get_running_loop().time()
        books.sim.kill_all()
        await until_none_valid(books)
        await m.wait_valid(timeout=WAIT)
        took = asyncio.get_running_loop().time() - started
        assert books.sim.depth.rest_violations == 0
        assert m.statistics().snapshots_rate_limited == 0
        # 25 snapshots, 11 per 1.25 s (the throttler's 5 % margin and its latency guard):
        # three windows, over 2 s, not the few milliseconds of a herd.
        assert took > 2.0
        assert_audited(books)


async def test_a_venue_limit_the_throttler_does_not_know_is_honoured_after_a_429() -> None:
    """The same reset with a throttler that allows 5 times what the venue does: the venue
    answers 429, the maintainer pauses every snapshot for its Retry-After, and still every
    book comes back (and none is served wrong)."""
    symbols = [f"L{i}USDT" for i in range(30)]
    async with simulated_books(weight=(300, 1.0), venue_weight=(60, 1.0)) as books:
        m = books.maintainer
        await m.add(symbols)
        await m.wait_valid(timeout=WAIT)
        assert books.sim.depth.rest_violations > 0  # the check above could fail
        assert m.statistics().snapshots_rate_limited > 0
        assert_audited(books)


async def test_refused_resubscriptions_are_retried_until_the_venue_accepts() -> None:
    """The venue's cap drops to one topic a connection, every connection is reset: the
    replay of two of the three topics is refused. Those books stay not valid (never
    served) until the venue takes them again."""
    settings = BookSettings(resubscribe_after=1.0, retry_initial=0.05, retry_cap=0.2)
    async with simulated_books(
        per_connection=3, settings=settings, ws_kwargs=one_topic_per_message()
    ) as books:
        m, sim = books.maintainer, books.sim
        await m.add(SYMBOLS[:3])
        await m.wait_valid(timeout=WAIT)
        sim.max_streams_per_connection = 1
        sim.kill_all()
        await asyncio.sleep(1500 * MS)  # > resubscribe_after: the refused ones were retried
        assert sum(b.valid for b in m.books()) <= 1
        assert all(b.top() is None for b in m.books() if not b.valid)
        sim.max_streams_per_connection = 3
        await m.wait_valid(timeout=WAIT)
        assert m.statistics().resubscriptions >= 2
        assert_audited(books)


async def test_bad_input_gets_a_clear_error() -> None:
    async with simulated_books(
        per_connection=5,
        sim_kwargs={"max_streams_per_connection": 1},
        ws_kwargs=one_topic_per_message(),
    ) as books:
        m = books.maintainer
        with pytest.raises(ConfigurationError, match="alphanumeric"):
            await m.add(["BTC-USDT"])
        with pytest.raises(UnknownBookError, match="add\\(\\) it first"):
            m.book("ETHUSDT")
        # The venue takes one depth topic per connection: the second book is refused.
        refused = await m.add(["R1USDT", "R2USDT"])
        assert list(refused) == ["R2USDT"] and "exceed" in refused["R2USDT"]
        assert m.symbols == ("R1USDT",)
        rest = await books.factory.get_rest_manager()
        with pytest.raises(ConfigurationError, match="http"):
            OrderBookMaintainer(books.ws, rest, BinanceSpotRules(), "ws://x")
        with pytest.raises(ConfigurationError, match=r"ws://\*\*\*@x/\?key=\*\*\*") as bad:
            OrderBookMaintainer(books.ws, rest, BinanceSpotRules(), "ws://u:s3cr3t@x/?key=TOP")
        assert "s3cr3t" not in str(bad.value) and "TOP" not in str(bad.value)  # issue 9
    with pytest.raises(ConfigurationError, match="snapshot_concurrency"):
        BookSettings(snapshot_concurrency=0)
    with pytest.raises(ConfigurationError, match="retry_cap"):
        BookSettings(retry_initial=2.0, retry_cap=1.0)


async def test_a_throttler_without_the_snapshot_limit_fails_loudly() -> None:
    async with simulated_books(limits=[RateLimit("other", 10, 1.0)]) as books:
        m = books.maintainer
        await m.add(SYMBOLS[:2])
        with pytest.raises(UnknownRateLimitError, match="api/v3/depth"):
            await m.wait_valid(timeout=WAIT)
        assert not any(b.valid for b in m.books())
        with pytest.raises(UnknownRateLimitError):
            async for _ in m.events():
                pass


async def test_remove_stops_a_book_and_its_subscription() -> None:
    async with simulated_books() as books:
        m = books.maintainer
        await m.add(SYMBOLS[:2])
        await m.wait_valid(timeout=WAIT)
        handle = m.book("B0USDT")
        await m.remove(["b0usdt", "unknown"])
        assert m.symbols == ("B1USDT",) and not handle.valid
        assert books.ws.shard_of("b0usdt@depth") is None
        with pytest.raises(UnknownBookError):
            m.book("B0USDT")
        assert rest_url(books.sim).startswith("http://127.0.0.1:")


async def test_a_stalled_consumer_loses_messages_and_its_book_says_so() -> None:
    """Queues of two messages that drop the oldest, and one update that blocks the loop for
    0.3 s: messages are dropped on the way to the book, which goes not valid at once
    (``MessagesDropped`` or the sequence gap, whichever it meets first) and resyncs."""
    stalled: list[bool] = []
    events: list[BookEvent] = []

    def stall_once(book: object) -> None:
        if not stalled:
            stalled.append(True)
            time.sleep(300 * MS)  # a consumer that blocks its event loop

    ws_kwargs = {"max_queue": 2, "overflow": "drop_oldest"}
    async with (
        simulated_books(rate=200.0, ws_kwargs=ws_kwargs, on_update=stall_once) as books,
        asyncio.TaskGroup() as tasks,
    ):
        collector = tasks.create_task(collect(books, events))
        await books.maintainer.add(["D1USDT"])
        await wait_until(lambda: any(isinstance(e, BookInvalid) for e in events), "invalid")
        await books.maintainer.wait_valid(timeout=WAIT)
        collector.cancel()
    invalid = next(e for e in events if isinstance(e, BookInvalid))
    assert "dropped" in invalid.reason or "sequence gap" in invalid.reason, invalid
    assert_audited(books)


async def test_topics_a_rotation_loses_are_subscribed_again() -> None:
    """The venue takes one topic a connection when a shard of three is rotated: the
    replacement keeps one, the manager names the two others in ``TopicsLost``; their books
    go not valid at once and are subscribed again until the venue takes them."""
    settings = BookSettings(retry_initial=0.05, retry_cap=0.2)
    events: list[BookEvent] = []
    async with (
        simulated_books(
            per_connection=3, settings=settings, ws_kwargs=one_topic_per_message()
        ) as books,
        asyncio.TaskGroup() as tasks,
    ):
        collector = tasks.create_task(collect(books, events))
        m, sim = books.maintainer, books.sim
        await m.add(SYMBOLS[:3])
        await m.wait_valid(timeout=WAIT)
        shard = books.ws.shard_of(m.book(SYMBOLS[0]).topic)
        assert shard is not None
        sim.max_streams_per_connection = 1
        await books.ws.rotate(shard)
        lost = [e for e in events if isinstance(e, BookInvalid) and "lost" in e.reason]
        assert len(lost) == 2, events
        await asyncio.sleep(500 * MS)
        # One of the two may already sit alone on a new connection; the other is refused
        # there, and is not served meanwhile.
        assert 1 <= sum(b.valid for b in m.books()) <= 2
        assert all(b.top() is None for b in m.books() if not b.valid)
        sim.max_streams_per_connection = 3
        await m.wait_valid(timeout=WAIT)
        collector.cancel()
    assert_audited(books)
