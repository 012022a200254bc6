"""The venue plug-ins: parsing with clear errors, and how diffs relate to a book."""

from __future__ import annotations

import pytest

from networkpype.books.binance import BinanceSpotRules, snapshot_weight
from networkpype.books.book import OrderBook
from networkpype.books.errors import BookDataError
from networkpype.books.rules import Diff, Relation, parse_levels
from networkpype.books.sequenced import SequencedChecksumRules, top_levels_checksum
from networkpype.protocol.errors import ConfigurationError, NetworkPypeError


def diff(first: int, last: int) -> Diff:
    return Diff(first, last, [], [])


def test_binance_topic_request_and_weights() -> None:
    rules = BinanceSpotRules(limit=100, speed="100ms")
    assert rules.topic("BTCUSDT") == "btcusdt@depth@100ms"
    request = rules.snapshot_request("BTCUSDT")
    assert (request.path, dict(request.params), request.weight) == (
        "/api/v3/depth",
        {"symbol": "BTCUSDT", "limit": 100},
        5,
    )
    assert [snapshot_weight(n) for n in (1, 100, 101, 500, 501, 1000, 5000)] == [
        5, 5, 25, 25, 50, 50, 250,
    ]  # fmt: skip
    limits = {limit.limit_id: limit for limit in BinanceSpotRules(limit=500).rate_limits()}
    assert limits["REQUEST_WEIGHT"].limit == 6000
    assert limits["api/v3/depth"].weight == 25
    assert limits["api/v3/depth"].linked_limits[0].weight == 25
    with pytest.raises(ConfigurationError, match="5000"):
        BinanceSpotRules(limit=5001)
    with pytest.raises(ConfigurationError, match="speed"):
        BinanceSpotRules(speed="10ms")


def test_binance_parses_bare_and_combined_events() -> None:
    rules = BinanceSpotRules()
    event = {"e": "depthUpdate", "U": 157, "u": 160, "b": [["0.0024", "10"]]}
    event["a"] = [["0.0026", "0"]]
    parsed = rules.parse_diff(event)
    assert parsed == Diff(157, 160, [(0.0024, 10.0)], [(0.0026, 0.0)])
    assert rules.parse_diff({"stream": "bnbbtc@depth", "data": event}) == parsed
    body = {"lastUpdateId": 1027024, "bids": [["4.0", "431.0"]], "asks": []}
    snapshot = rules.parse_snapshot(body)
    assert (snapshot.update_id, snapshot.bids, snapshot.asks) == (1027024, [(4.0, 431.0)], [])


@pytest.mark.parametrize(
    ("event", "match"),
    [
        ([1, 2], "expected a JSON object"),
        ({"U": "1", "u": 2, "b": [], "a": []}, "'U' must be an integer"),
        ({"U": 1, "u": True, "b": [], "a": []}, "'u' must be an integer"),
        ({"U": 5, "u": 4, "b": [], "a": []}, "below U=5"),
        ({"U": 1, "u": 2, "b": [["x", "1"]], "a": []}, r"depth update b: expected \[\[price"),
        ({"U": 1, "u": 2, "b": [], "a": None}, "depth update a"),
        ({"U": 1, "u": 2, "b": [["1", "-1"]], "a": []}, "finite quantity >= 0"),
        ({"U": 1, "u": 2, "b": [["nan", "1"]], "a": []}, "finite price > 0"),
        ({"U": 1, "u": 2, "b": [["0", "1"]], "a": []}, "finite price > 0"),
    ],
)
def test_bad_diffs_raise_a_clear_error(event: object, match: str) -> None:
    with pytest.raises(BookDataError, match=match) as caught:
        BinanceSpotRules().parse_diff(event)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, NetworkPypeError)


def test_binance_relations() -> None:
    rules = BinanceSpotRules()
    # After a snapshot at 100: u <= 100 is stale; U <= 101 <= u applies; U > 101 is a gap.
    assert rules.relate(100, diff(90, 100), bridging=True) is Relation.STALE
    assert rules.relate(100, diff(95, 101), bridging=True) is Relation.APPLY
    assert rules.relate(100, diff(101, 105), bridging=True) is Relation.APPLY
    assert rules.relate(100, diff(102, 105), bridging=True) is Relation.GAP
    # Later: U must be the previous u + 1.
    assert rules.relate(105, diff(106, 110), bridging=False) is Relation.APPLY
    assert rules.relate(105, diff(101, 105), bridging=False) is Relation.STALE  # a duplicate
    assert rules.relate(105, diff(107, 110), bridging=False) is Relation.GAP
    assert rules.relate(105, diff(104, 110), bridging=False) is Relation.GAP  # overlaps: not next
    assert rules.verify(OrderBook(), 123) is None


def test_sequenced_rules_check_sequence_and_checksum() -> None:
    rules = SequencedChecksumRules(checksum_depth=2)
    book = OrderBook()
    book.load([(10.0, 1.0), (9.0, 2.0), (8.0, 3.0)], [(11.0, 1.0)], 5)
    expected = top_levels_checksum([(10.0, 1.0), (9.0, 2.0)], [(11.0, 1.0)])
    assert rules.verify(book, expected) is None
    assert rules.verify(book, None) is None
    problem = rules.verify(book, expected ^ 1)
    assert problem is not None and "checksum mismatch at 5" in problem
    parsed = rules.parse_diff({"seq": 6, "b": [["9", "0"]], "a": [], "c": 42})
    assert parsed == Diff(6, 6, [(9.0, 0.0)], [], 42)
    assert rules.relate(5, parsed, bridging=True) is Relation.APPLY
    assert rules.relate(6, parsed, bridging=False) is Relation.STALE
    assert rules.relate(4, parsed, bridging=True) is Relation.GAP
    with pytest.raises(BookDataError, match="'c' must be an integer"):
        rules.parse_diff({"seq": 6, "b": [], "a": []})
    with pytest.raises(ConfigurationError):
        SequencedChecksumRules(checksum_depth=0)


def test_checksum_interleaves_bids_and_asks() -> None:
    import zlib

    text = "10.00000000:1.00000000:11.00000000:2.00000000:9.00000000:3.00000000"
    checksum = top_levels_checksum([(10.0, 1.0), (9.0, 3.0)], [(11.0, 2.0)])
    assert checksum == zlib.crc32(text.encode())


def test_parse_levels_accepts_numbers_too() -> None:
    assert parse_levels([[1, 2], ("3.5", "0")], "x") == [(1.0, 2.0), (3.5, 0.0)]
