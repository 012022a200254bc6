"""Order-book update throughput: apply a diff, read the top of the book; beside a plain-dict
book measured in the same run.

    .venv/bin/python bench/book_throughput.py                 # 20, 200 and 1000 levels a side
    .venv/bin/python bench/book_throughput.py --levels 500 --updates 50000 --runs 7

The updates are the exchange simulator's (``DepthTruth``: a random walk on a tick grid,
levels leaving and entering a window of ``--levels`` a side, a few quantities changed per
update), generated once and parsed to ``(price, quantity)`` floats before timing. Each run
applies every update and reads the best bid and ask after each:

* **dict** (the baseline): ``{price: quantity}`` per side, a quantity of 0 pops, the best
  bid and ask by ``max()``/``min()`` over the keys;
* **OrderBook**: ``networkpype.books.OrderBook.apply`` then ``best_bid()``/``best_ask()``;
* **BookSync + top()**: what the maintainer does per update, without the network:
  ``BookSync.on_diff`` (the Binance sequence rule, then the apply) and ``LiveBook.top()``
  (a frozen ``TopOfBook``);
* **parse + BookSync + top()**: the same from the decoded JSON event
  (``BinanceSpotRules.parse_diff``: strings to floats, checked).

Each figure is the median of ``--runs`` runs, the variants interleaved in every run; the
ratio is to the dict baseline of the same run. Exit status 0; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from networkpype.books import BinanceSpotRules, BookSync, Diff, LiveBook, OrderBook
from networkpype.demo.depth import DepthTruth

Level = tuple[float, float]


def workload(levels: int, updates: int) -> tuple[list[Diff], list[dict[str, Any]]]:
    """``updates`` diffs of a book of ``levels`` a side (after one that fills it), parsed and
    as the decoded events the venue sends."""
    truth = DepthTruth("BENCHUSDT", levels=levels, history=1)
    diffs: list[Diff] = []
    events: list[dict[str, Any]] = []
    for _ in range(updates + 1):
        step = truth.step()
        event = truth.event(step)
        events.append(event)
        bids = [(t / 100, a / 1000) for side, t, _, a in step.changes if side == 0]
        asks = [(t / 100, a / 1000) for side, t, _, a in step.changes if side == 1]
        diffs.append(Diff(step.first_id, step.last_id, bids, asks))
    return diffs, events


def run_dict(diffs: list[Diff]) -> float:
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    started = time.perf_counter()
    for diff in diffs:
        for price, quantity in diff.bids:
            if quantity:
                bids[price] = quantity
            else:
                bids.pop(price, None)
        for price, quantity in diff.asks:
            if quantity:
                asks[price] = quantity
            else:
                asks.pop(price, None)
        best_bid = max(bids)
        best_ask = min(asks)
        _top = (best_bid, bids[best_bid], best_ask, asks[best_ask])
    return time.perf_counter() - started


def run_order_book(diffs: list[Diff]) -> float:
    book = OrderBook()
    started = time.perf_counter()
    for diff in diffs:
        book.apply(diff.bids, diff.asks, diff.last_id)
        _top = (book.best_bid(), book.best_ask())
    return time.perf_counter() - started


def _synced(first: Diff) -> tuple[BookSync, LiveBook]:
    sync = BookSync("BENCHUSDT", BinanceSpotRules(), 0.0)
    sync.on_diff(first, 0.0)
    sync.book.load(first.bids, first.asks, first.last_id)
    sync.status = sync.status.VALID  # as if synced from a snapshot at the first update
    handle = LiveBook(sync, "benchusdt@depth", lambda: False, time.monotonic)
    return sync, handle


def run_sync(diffs: list[Diff]) -> float:
    sync, handle = _synced(diffs[0])
    started = time.perf_counter()
    for diff in diffs[1:]:
        sync.on_diff(diff, 0.0)
        _top = handle.top()
    return time.perf_counter() - started


def run_parse_sync(diffs: list[Diff], events: list[dict[str, Any]]) -> float:
    sync, handle = _synced(diffs[0])
    parse = sync.rules.parse_diff
    started = time.perf_counter()
    for event in events[1:]:
        sync.on_diff(parse(event), 0.0)
        _top = handle.top()
    return time.perf_counter() - started


def measure(levels: int, updates: int, runs: int) -> list[tuple[str, float, float]]:
    """``(variant, updates a second, ratio to dict)`` medians over ``runs`` runs."""
    diffs, events = workload(levels, updates)
    variants: dict[str, Callable[[], float]] = {
        "dict (baseline)": lambda: run_dict(diffs[1:]),
        "OrderBook": lambda: run_order_book(diffs[1:]),
        "BookSync + top()": lambda: run_sync(diffs),
        "parse + BookSync + top()": lambda: run_parse_sync(diffs, events),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        this_run = {name: run() for name, run in variants.items()}
        for name, took in this_run.items():
            seconds[name].append(took)
            ratios[name].append(this_run["dict (baseline)"] / took)
    return [
        (name, updates / statistics.median(seconds[name]), statistics.median(ratios[name]))
        for name in variants
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, nargs="*", default=[20, 200, 1000])
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    if args.updates < 10 or args.runs < 1 or any(n < 1 for n in args.levels):
        parser.error("need --updates >= 10, --runs >= 1 and --levels >= 1")
    print(
        f"book update throughput: apply a diff, read the top of the book; medians of "
        f"{args.runs} runs of {args.updates} updates, Python {sys.version.split()[0]}"
    )
    for levels in args.levels:
        print(f"  {levels} levels a side:")
        for name, rate, ratio in measure(levels, args.updates, args.runs):
            print(f"    {name:26} {rate:>12,.0f} updates/s  {ratio:5.2f}x dict")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
