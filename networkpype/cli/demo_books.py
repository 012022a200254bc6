"""The order books of ``networkpype demo``: books kept by an ``OrderBookMaintainer`` over a
sharded manager of their own, configured as the demo's manager is, through a fault proxy of
their own (the demo's proxy and its faults are the topics'); the venue's own faults (a close
with 1008, 429s) reach them too, and so do their own: lost diffs, stale snapshots and
connection resets.

Every update of every book while it is reported valid is compared with the venue's book at
that update id (:class:`~networkpype.demo.book_audit.BookAudit`): the verdict counts the
books served wrong, which must be 0.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from networkpype.books import BinanceSpotRules, BookInvalid, BookResynced, OrderBookMaintainer
from networkpype.demo.book_audit import BookAudit
from networkpype.demo.exchange import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.testing import FaultProxy
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.sharded import ShardedWebSocketManager

__all__ = ["BookRow", "DemoBooks", "book_symbols"]

FAULT_EVERY = 1.5  # seconds between two faults of the books
REST_WEIGHT = (6000, 60.0)  # Binance spot's: 6000 weight a minute


def book_symbols(count: int) -> list[str]:
    """``count`` symbols of their own (no topic of the demo's manager carries them)."""
    return [f"BOOK{i:02d}USDT" for i in range(count)]


@dataclass(frozen=True, slots=True)
class BookRow:
    """The books at one moment (for the view): ``valid`` of ``books``, ``resyncs`` so far,
    ``checks`` against the venue, ``served_wrong`` (books ever served wrong), and the
    break-to-valid times so far (``p50``/``p99``, seconds)."""

    books: int
    valid: int
    resyncs: int
    snapshots: int
    checks: int
    served_wrong: int
    p50: float | None
    p99: float | None
    faults: int


class DemoBooks:
    """The demo's books (see the module docstring); ``log(text, style)`` writes an event
    line of the view."""

    def __init__(
        self,
        venue: ExchangeSimulator,
        count: int,
        seed: int,
        log: Callable[[str, str], None],
    ) -> None:
        self.venue = venue
        self.symbols = book_symbols(count)
        self.audit = BookAudit(venue.depth)
        self._rng = random.Random(seed * 7919 + 13)
        self._log = log
        self._rules = BinanceSpotRules(limit=100)
        self.factory = ConnectionManagersFactory(
            throttler=AsyncThrottler(self._rules.rate_limits(*REST_WEIGHT))
        )
        self.maintainer: OrderBookMaintainer | None = None
        self.proxy = FaultProxy(target_port=venue.port, seed=seed)
        self.invalid_for: list[float] = []
        self.faults = 0
        self._final: BookRow | None = None  # the books as they were when closed

    async def start(self, manager: ShardedWebSocketManager, **connect_kwargs: Any) -> None:
        """Connect ``manager`` (the books' own) to the venue, through the books' proxy, and
        keep the books."""
        await self.proxy.start()
        await manager.connect(self.proxy.url_for("/ws"), **connect_kwargs)
        rest = await self.factory.get_rest_manager()
        self.maintainer = OrderBookMaintainer(
            manager,
            rest,
            self._rules,
            f"http://127.0.0.1:{self.venue.port}",
            on_update=self.audit.check,
        )
        await self.maintainer.start()
        refused = await self.maintainer.add(self.symbols)
        if refused:
            self._log(f"books refused by the venue: {', '.join(refused)}", "bold red")

    async def aclose(self) -> None:
        """Stop the maintainer and close the books' connections (``row()`` keeps showing
        the books as they were)."""
        if self.maintainer is not None:
            self._final = self.row()
            await self.maintainer.aclose()
        await self.factory.close()
        await self.proxy.close()

    async def run(self) -> None:
        """Follow the books' events and inject their faults, until cancelled."""
        assert self.maintainer is not None
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(self.maintainer))
            tasks.create_task(self._inject(self.maintainer))

    async def _follow(self, maintainer: OrderBookMaintainer) -> None:
        async for event in maintainer.events():
            if isinstance(event, BookInvalid):
                self._log(f"book {event.symbol} not valid: {event.reason}", "magenta")
            elif isinstance(event, BookResynced) and not event.first:
                self.invalid_for.append(event.invalid_for)
                self._log(
                    f"book {event.symbol} valid again after "
                    f"{event.invalid_for * 1000:.0f} ms ({event.snapshots} snapshot(s))",
                    "green",
                )

    async def _inject(self, maintainer: OrderBookMaintainer) -> None:
        rng, depth = self._rng, self.venue.depth
        while True:
            await asyncio.sleep(FAULT_EVERY * (0.5 + rng.random()))
            if not self.symbols:
                return
            symbol = rng.choice(self.symbols)
            kind = rng.choice(("drop", "drop", "stale", "reset"))
            if kind == "drop":
                depth.drop_diffs(symbol, rng.randint(1, 3))
                self._log(f"fault (books): the venue loses diffs of {symbol}", "bold yellow")
            elif kind == "stale":
                depth.stale_snapshots(rng.randint(2, 6), count=2)
                self._log("fault (books): the next two snapshots lag the stream", "bold yellow")
            else:
                live = self.proxy.connections
                if not live or not self.proxy.reset(rng.choice(live).conn_id):
                    continue
                self._log("fault (books): a books connection reset (TCP RST)", "bold yellow")
            self.faults += 1

    def row(self) -> BookRow:
        """The books now (once closed: as they were then)."""
        if self._final is not None:
            return self._final
        maintainer = self.maintainer
        stats = maintainer.statistics() if maintainer is not None else None
        ordered = sorted(self.invalid_for)
        return BookRow(
            books=len(self.symbols),
            valid=stats.valid if stats is not None else 0,
            resyncs=stats.resyncs if stats is not None else 0,
            snapshots=stats.snapshots_requested if stats is not None else 0,
            checks=self.audit.checks,
            served_wrong=self.audit.books_served_wrong,
            p50=ordered[len(ordered) // 2] if ordered else None,
            p99=ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
            if ordered
            else None,
            faults=self.faults,
        )

    async def settle(self, seconds: float) -> None:
        """Wait up to ``seconds`` for every book to be valid (for the summary)."""
        if self.maintainer is None:
            return
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            if all(b.valid for b in self.maintainer.books()):
                return
            await asyncio.sleep(0.05)

    def summary(self) -> list[str]:
        """The summary's lines about the books; the verdict line last."""
        row = self.row()

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f} ms"

        return [
            f"  books: {row.books}, valid at the end: {row.valid}; {row.faults} faults of "
            f"their own, {row.resyncs} resyncs, {row.snapshots} snapshots, REST limit "
            f"violations {self.venue.depth.rest_violations}",
            f"  books: break -> valid p50 {ms(row.p50)}, p99 {ms(row.p99)}; "
            f"{row.checks} checks of valid books against the venue",
            f"  books served wrong: {row.served_wrong}",
        ]

    @property
    def ok(self) -> bool:
        """No book was served wrong and the venue counted no REST limit violation."""
        return self.audit.books_served_wrong == 0 and self.venue.depth.rest_violations == 0
