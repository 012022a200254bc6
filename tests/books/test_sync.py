"""BookSync, the pure validity state machine: no loop, no socket, the clock passed in."""

from __future__ import annotations

import pytest

from networkpype.books.binance import BinanceSpotRules
from networkpype.books.rules import Diff, Snapshot
from networkpype.books.sequenced import SequencedChecksumRules, top_levels_checksum
from networkpype.books.sync import BookStatus, BookSync, Change
from networkpype.protocol.errors import ConfigurationError


def d(first: int, last: int, bid: float = 1.0) -> Diff:
    """A diff that sets the bid at 100.0 to ``bid`` (so the book shows which diffs ran)."""
    return Diff(first, last, [(100.0, bid)], [(101.0, 1.0)])


SNAP = Snapshot(100, [(100.0, 0.5), (99.0, 1.0)], [(101.0, 2.0)])


def synced(now: float = 0.0) -> BookSync:
    sync = BookSync("BTCUSDT", BinanceSpotRules(), now)
    sync.on_diff(d(95, 101, 7.0), now)
    assert sync.needs_snapshot
    assert sync.on_snapshot(SNAP, now) is Change.VALIDATED
    return sync


def test_binance_join_drops_old_diffs_and_needs_a_bridging_one() -> None:
    sync = BookSync("BTCUSDT", BinanceSpotRules(), now=0.0)
    assert sync.status is BookStatus.SYNCING and not sync.needs_snapshot  # nothing buffered
    assert sync.on_diff(d(90, 95, 1.0), 0.1) is Change.NONE
    assert sync.on_diff(d(96, 100, 2.0), 0.2) is Change.NONE
    assert sync.needs_snapshot and sync.buffered == 2
    # The snapshot at 100 covers both buffered diffs: loaded, but not valid yet.
    assert sync.on_snapshot(SNAP, 0.3) is Change.NONE
    assert not sync.valid and not sync.needs_snapshot
    assert sync.book.bid_levels == {100.0: 0.5, 99.0: 1.0}
    # The first diff straddles the snapshot (U <= 101 <= u): applied, valid.
    assert sync.on_diff(d(99, 103, 3.0), 0.5) is Change.VALIDATED
    assert sync.valid and sync.book.update_id == 103 and sync.book.best_bid() == (100.0, 3.0)
    assert sync.last_invalid_for == pytest.approx(0.5)
    assert sync.validations == 1 and sync.resyncs == 0
    assert sync.on_diff(d(104, 104, 4.0), 0.6) is Change.UPDATED
    assert sync.on_diff(d(100, 104, 9.0), 0.6) is Change.NONE  # a duplicate: dropped
    assert sync.book.best_bid() == (100.0, 4.0) and sync.stale_dropped == 1


def test_buffered_diffs_after_the_snapshot_are_applied_in_order() -> None:
    sync = BookSync("X", BinanceSpotRules(), 0.0)
    for first, last, bid in [(98, 100, 1.0), (101, 102, 2.0), (103, 105, 3.0)]:
        sync.on_diff(d(first, last, bid), 0.0)
    assert sync.on_snapshot(SNAP, 1.0) is Change.VALIDATED
    assert sync.book.update_id == 105 and sync.book.best_bid() == (100.0, 3.0)


def test_a_snapshot_older_than_the_stream_is_refused_and_the_buffer_kept() -> None:
    sync = BookSync("X", BinanceSpotRules(), 0.0)
    sync.on_diff(d(110, 112), 0.0)
    sync.on_diff(d(113, 115, 5.0), 0.0)
    assert sync.on_snapshot(SNAP, 0.1) is Change.NONE  # lastUpdateId 100 < U - 1 = 109
    assert not sync.valid and sync.needs_snapshot and sync.buffered == 2
    assert sync.stale_snapshots == 1 and "older than the stream" in sync.reason
    newer = Snapshot(111, [(100.0, 0.5)], [])
    assert sync.on_snapshot(newer, 0.2) is Change.VALIDATED
    assert sync.book.update_id == 115 and sync.book.best_bid() == (100.0, 5.0)


def test_a_gap_invalidates_at_once_and_keeps_its_diff_for_the_resync() -> None:
    sync = synced()
    assert sync.on_diff(d(110, 111), 5.0) is Change.INVALIDATED
    assert not sync.valid and sync.breaks == 1 and "sequence gap" in sync.reason
    assert sync.needs_snapshot and sync.buffered == 1
    assert sync.invalid_since == 5.0
    assert sync.on_diff(d(112, 112, 8.0), 5.1) is Change.NONE  # buffered, not applied
    assert sync.book.update_id == 101  # the invalid book is left as it was
    snapshot = Snapshot(111, [(100.0, 1.0)], [])
    assert sync.on_snapshot(snapshot, 5.5) is Change.VALIDATED
    assert sync.resyncs == 1 and sync.last_invalid_for == pytest.approx(0.5)
    assert sync.book.best_bid() == (100.0, 8.0)


def test_invalidate_empties_the_buffer_and_reports_only_a_valid_book() -> None:
    sync = synced()
    assert sync.invalidate("shard1 disconnected", 1.0) is Change.INVALIDATED
    assert sync.invalidate("shard1 reconnected", 2.0) is Change.NONE  # not valid already
    assert sync.invalid_since == 1.0 and sync.reason == "shard1 reconnected"
    sync.on_diff(d(200, 201), 2.1)
    assert sync.invalidate("dropped", 2.2) is Change.NONE and sync.buffered == 0
    assert sync.on_snapshot(SNAP, 2.3) is Change.NONE  # loaded: no diff bridges it yet
    assert sync.on_diff(d(300, 301), 2.4) is Change.NONE  # the snapshot is too old for it
    assert sync.needs_snapshot


def test_a_snapshot_while_valid_is_ignored() -> None:
    sync = synced()
    assert sync.on_snapshot(Snapshot(1, [], []), 1.0) is Change.NONE
    assert sync.book.update_id == 101


def test_the_buffer_is_bounded_and_dropping_the_oldest_stays_safe() -> None:
    sync = BookSync("X", BinanceSpotRules(), 0.0, max_buffer=3)
    for i in range(10):
        sync.on_diff(d(101 + 2 * i, 102 + 2 * i), 0.0)  # 101..120
    assert sync.buffered == 3  # 115..120 kept
    assert sync.on_snapshot(SNAP, 0.1) is Change.NONE  # at 100: the kept ones do not bridge
    assert sync.on_snapshot(Snapshot(114, [], []), 0.2) is Change.VALIDATED
    assert sync.book.update_id == 120
    with pytest.raises(ConfigurationError):
        BookSync("X", BinanceSpotRules(), 0.0, max_buffer=0)


def checksummed(seq: int, bids: list[tuple[float, float]], book_after: dict[float, float]) -> Diff:
    top = sorted(book_after.items(), reverse=True)[:10]
    return Diff(seq, seq, bids, [], top_levels_checksum(top, []))


def test_sequenced_checksum_catches_a_wrong_book_without_a_gap() -> None:
    sync = BookSync("X", SequencedChecksumRules(), 0.0)
    truth = {10.0: 1.0, 9.0: 2.0}
    sync.on_diff(checksummed(6, [(8.0, 1.0)], truth | {8.0: 1.0}), 0.0)
    assert sync.on_snapshot(Snapshot(5, list(truth.items()), []), 0.1) is Change.VALIDATED
    truth[8.0] = 1.0
    assert sync.on_diff(checksummed(7, [(9.0, 0.0)], {10.0: 1.0, 8.0: 1.0}), 0.2) is Change.UPDATED
    # The venue's book lost a level this client never heard of: same sequence, wrong book.
    wrong = checksummed(8, [(10.0, 2.0)], {10.0: 2.0})  # the venue has no 8.0 any more
    assert sync.on_diff(wrong, 0.3) is Change.INVALIDATED
    assert "checksum mismatch at 8" in sync.reason and not sync.needs_snapshot


def test_sequenced_snapshot_with_a_wrong_checksum_is_refused() -> None:
    sync = BookSync("X", SequencedChecksumRules(), 0.0)
    truth = {10.0: 1.0}
    sync.on_diff(checksummed(6, [], truth), 0.0)
    lying = Snapshot(5, [(10.0, 1.0), (7.0, 1.0)], [])  # a level the venue does not have
    assert sync.on_snapshot(lying, 0.1) is Change.NONE
    assert not sync.valid and "checksum mismatch" in sync.reason and sync.needs_snapshot is False
    sync.on_diff(checksummed(7, [], truth), 0.2)
    assert sync.needs_snapshot
    assert sync.on_snapshot(Snapshot(6, [(10.0, 1.0)], []), 0.3) is Change.VALIDATED
