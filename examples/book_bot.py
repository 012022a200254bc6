"""A bot that trades off the top of its order books, and pauses while a book is not valid.

It keeps five order books of the bundled exchange simulator with an ``OrderBookMaintainer``
(Binance spot's rules: a REST snapshot joined with the diff stream), and every 50 ms decides
per symbol: a book that hands out its top of book gets a quote one tick inside the spread;
a book that hands out nothing (``top()`` is ``None`` while it is not valid) gets no quote,
and the bot says so once per pause. After a second the venue loses two diffs of one book
(its update ids jump); a second later it serves stale snapshots and resets every
connection: the books go not valid at once, resync by themselves, and trading resumes.
Every quote is checked against the simulator's own book.

    .venv/bin/python examples/book_bot.py
"""

from __future__ import annotations

import asyncio
import time

from networkpype.books import BinanceSpotRules, BookInvalid, BookResynced, OrderBookMaintainer
from networkpype.demo import ExchangeSimulator
from networkpype.demo.book_audit import BookAudit
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.throttler import AsyncThrottler

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT"]
TICK = 0.01


async def main() -> None:
    rules = BinanceSpotRules(limit=100)
    async with ExchangeSimulator(rate=20.0) as venue:
        factory = ConnectionManagersFactory(throttler=AsyncThrottler(rules.rate_limits()))
        ws = await factory.get_sharded_ws_manager(min_send_interval=0.2)
        await ws.connect(venue.url)
        rest = await factory.get_rest_manager()
        audit = BookAudit(venue.depth)  # the simulator's ground truth, for the check below
        books = OrderBookMaintainer(ws, rest, rules, f"http://127.0.0.1:{venue.port}")
        async with books, asyncio.TaskGroup() as tasks:
            await books.add(SYMBOLS)
            await books.wait_valid(timeout=10.0)
            print(f"{len(SYMBOLS)} books valid; trading")
            watcher = tasks.create_task(watch(books))
            quotes, wrong, paused = 0, 0, set[str]()
            started = time.monotonic()
            faults = [(1.0, "drop"), (2.0, "reset")]
            # Three seconds of trading, then until every book trades again (30 s at most).
            while (elapsed := time.monotonic() - started) < 3.0 or (paused and elapsed < 30.0):
                if faults and elapsed >= faults[0][0]:
                    if faults.pop(0)[1] == "drop":
                        venue.depth.drop_diffs("ETHUSDT", 2)
                        print("venue: two diffs of ETHUSDT lost")
                    else:
                        venue.depth.stale_snapshots(3, count=2)
                        print(f"venue: stale snapshots, {venue.kill_all()} connection reset")
                for symbol in SYMBOLS:
                    book = books.book(symbol)
                    top = book.top()  # None while the book is not valid
                    if top is None or top.bid is None or top.ask is None:
                        if symbol not in paused:
                            paused.add(symbol)
                            print(f"{symbol}: paused ({book.reason})")
                        continue
                    paused.discard(symbol)
                    quote = (top.bid[0] + TICK, top.ask[0] - TICK)  # one tick inside
                    quotes += quote[0] <= quote[1]
                    # The check a real bot cannot make: the book it traded off was right.
                    wrong += not audit.check(book)
                await asyncio.sleep(0.05)
            watcher.cancel()
            if paused:
                print(f"still paused after 30 s: {sorted(paused)}")
            stats = books.statistics()
        await factory.close()
    print(f"quotes: {quotes}, from books that were wrong: {wrong}")
    print(f"resyncs: {stats.resyncs}, snapshots: {stats.snapshots_requested}")
    print(f"REST limit violations at the venue: {venue.depth.rest_violations}")


async def watch(books: OrderBookMaintainer) -> None:
    async for event in books.events():
        if isinstance(event, BookInvalid):
            print(f"{event.symbol}: not valid: {event.reason.split(':')[0]}")
        elif isinstance(event, BookResynced) and not event.first:
            print(f"{event.symbol}: valid again after {event.invalid_for * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
