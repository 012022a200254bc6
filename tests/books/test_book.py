"""OrderBook: pure, checked against a plain dict model."""

from __future__ import annotations

import random

from networkpype.books.book import OrderBook


def test_apply_sets_and_removes_levels_and_keeps_the_best_at_the_ends() -> None:
    book = OrderBook()
    book.load([(99.0, 1.0), (98.0, 2.0), (97.0, 0.0)], [(101.0, 1.5), (102.0, 3.0)], 10)
    assert book.update_id == 10
    assert len(book) == 4  # the zero level of the snapshot is left out
    assert book.best_bid() == (99.0, 1.0)
    assert book.best_ask() == (101.0, 1.5)
    book.apply([(99.0, 0.0), (99.5, 4.0)], [(101.0, 0.0), (100.5, 0.5)], 11)
    assert book.best_bid() == (99.5, 4.0)
    assert book.best_ask() == (100.5, 0.5)
    assert book.bids(5) == [(99.5, 4.0), (98.0, 2.0)]
    assert book.asks(1) == [(100.5, 0.5)]
    assert book.bids(0) == [] and book.asks(-1) == []
    book.apply([(42.0, 0.0)], [], 12)  # removing an unknown level changes nothing
    assert len(book) == 4 and book.update_id == 12


def test_empty_sides() -> None:
    book = OrderBook()
    assert book.best_bid() is None and book.best_ask() is None
    assert book.bids(3) == [] and book.asks(3) == []


def test_random_updates_match_a_dict_model() -> None:
    rng = random.Random(7)
    book = OrderBook()
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for update_id in range(1, 3000):
        changes_b = [(float(rng.randint(1, 60)), float(rng.choice([0, 0, 1, 3]))) for _ in "abcde"]
        changes_a = [(float(rng.randint(61, 120)), float(rng.choice([0, 1, 2]))) for _ in "abcde"]
        book.apply(changes_b, changes_a, update_id)
        for side, changes in ((bids, changes_b), (asks, changes_a)):
            for price, qty in changes:
                if qty:
                    side[price] = qty
                else:
                    side.pop(price, None)
        assert book.bid_levels == bids
        assert book.ask_levels == asks
        assert book.bids(3) == sorted(bids.items(), reverse=True)[:3]
        assert book.asks(3) == sorted(asks.items())[:3]
