"""``OrderBook``: the price levels of one symbol, pure (no I/O, no clock).

Each side is a dict ``price -> quantity`` plus the sorted list of its prices, so that an
update costs a dict store and, only when a level appears or disappears, a binary search
and a ``list`` insert/delete (a ``memmove``); the best bid and ask are the ends of the
lists, and the best ``n`` levels are a slice: reading the top never copies the book.

Prices and quantities are floats parsed from the venue's decimal strings: the same string
always gives the same float, so a level is found again by the price the venue repeats; a
quantity of 0 removes the level. The book does not judge whether an update may be applied
(sequence numbers, checksums): that is :class:`~networkpype.books.sync.BookSync`'s job.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeAlias

__all__ = ["Level", "OrderBook"]

Level: TypeAlias = tuple[float, float]
"""One price level: ``(price, quantity)``."""


def _apply(levels: Iterable[Level], side: dict[float, float], prices: list[float]) -> None:
    for price, quantity in levels:
        if quantity == 0.0:
            if side.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        else:
            if price not in side:
                insort(prices, price)
            side[price] = quantity


class OrderBook:
    """Bids and asks of one symbol at ``update_id``.

    :meth:`load` replaces everything (a snapshot); :meth:`apply` changes the levels a diff
    names. Reads: :meth:`best_bid`/:meth:`best_ask` (``None`` for an empty side),
    :meth:`bids`/:meth:`asks` (the best ``n`` levels, best first), and the read-only
    mappings :attr:`bid_levels`/:attr:`ask_levels` (live views, no copy).
    """

    __slots__ = ("_ask_prices", "_asks", "_bid_prices", "_bids", "ask_levels", "bid_levels",
                 "update_id")  # fmt: skip

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending: the best bid is the last
        self._ask_prices: list[float] = []  # ascending: the best ask is the first
        self.bid_levels: Mapping[float, float] = MappingProxyType(self._bids)
        self.ask_levels: Mapping[float, float] = MappingProxyType(self._asks)
        self.update_id = 0

    def __len__(self) -> int:
        """Levels on both sides."""
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"OrderBook(update_id={self.update_id}, bid={self.best_bid()}, "
            f"ask={self.best_ask()}, levels={len(self)})"
        )

    def load(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        """Replace every level (levels of quantity 0 are left out) and set ``update_id``."""
        self._bids.clear()
        self._asks.clear()
        self._bids.update((p, q) for p, q in bids if q != 0.0)
        self._asks.update((p, q) for p, q in asks if q != 0.0)
        self._bid_prices[:] = sorted(self._bids)
        self._ask_prices[:] = sorted(self._asks)
        self.update_id = update_id

    def apply(self, bids: Iterable[Level], asks: Iterable[Level], update_id: int) -> None:
        """Set each named level to its quantity (0 removes it), then ``update_id``."""
        _apply(bids, self._bids, self._bid_prices)
        _apply(asks, self._asks, self._ask_prices)
        self.update_id = update_id

    def best_bid(self) -> Level | None:
        """The highest bid, or ``None``."""
        prices = self._bid_prices
        if not prices:
            return None
        price = prices[-1]
        return price, self._bids[price]

    def best_ask(self) -> Level | None:
        """The lowest ask, or ``None``."""
        prices = self._ask_prices
        if not prices:
            return None
        price = prices[0]
        return price, self._asks[price]

    def bids(self, n: int) -> list[Level]:
        """The best ``n`` bids, highest first (fewer when the side is shorter)."""
        if n <= 0:
            return []
        side = self._bids
        return [(p, side[p]) for p in reversed(self._bid_prices[-n:])]

    def asks(self, n: int) -> list[Level]:
        """The best ``n`` asks, lowest first (fewer when the side is shorter)."""
        if n <= 0:
            return []
        side = self._asks
        return [(p, side[p]) for p in self._ask_prices[:n]]
