"""Synthetic, deterministic market data for the demo server: trade events and order-book
updates shaped like Binance's, and the parsing of topic names."""

from __future__ import annotations

import itertools
import random
import time
import zlib
from typing import Any, Literal

__all__ = ["DEPTH_LEVELS", "StreamKind", "SyntheticMarket", "topic_kind"]

StreamKind = Literal["trade", "book"]
"""``trade``: ~150-byte trade events; ``book``: ~1.1 KB order-book updates."""

DEPTH_LEVELS = 16
"""Bids and asks per order-book update (16 + 16 levels make ~1.1 KB of JSON)."""


class SyntheticMarket:
    """Synthetic, deterministic market data for one symbol (a seeded random walk)."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol.upper()
        self._rng = random.Random(zlib.crc32(self.symbol.encode()))
        self._price = 100.0 + self._rng.random() * 30_000.0
        self._trade_id = itertools.count(1)
        self._update_id = itertools.count(1)

    def _step(self) -> float:
        self._price = max(0.01, self._price * (1.0 + self._rng.gauss(0.0, 0.0005)))
        return self._price

    def trade(self) -> dict[str, Any]:
        """A trade event without ``seq`` and ``stream``."""
        now_ms = int(time.time() * 1000)
        return {
            "e": "trade",
            "E": now_ms,
            "s": self.symbol,
            "t": next(self._trade_id),
            "p": f"{self._step():.8f}",
            "q": f"{self._rng.uniform(0.0001, 2.0):.8f}",
            "T": now_ms,
            "m": self._rng.random() < 0.5,
        }

    def depth(self) -> dict[str, Any]:
        """An order-book update without ``seq`` and ``stream``."""
        mid = self._step()
        tick = mid * 0.0001
        first = next(self._update_id)
        for _ in range(2 * DEPTH_LEVELS - 1):
            last = next(self._update_id)
        rng = self._rng
        return {
            "e": "depthUpdate",
            "E": int(time.time() * 1000),
            "s": self.symbol,
            "U": first,
            "u": last,
            "b": [
                [f"{mid - (i + 1) * tick:.8f}", f"{rng.uniform(0.0, 5.0):.8f}"]
                for i in range(DEPTH_LEVELS)
            ],
            "a": [
                [f"{mid + (i + 1) * tick:.8f}", f"{rng.uniform(0.0, 5.0):.8f}"]
                for i in range(DEPTH_LEVELS)
            ],
        }


def topic_kind(topic: str) -> StreamKind | None:
    """``trade`` for ``<symbol>@trade``, ``book`` for ``<symbol>@depth...``, else ``None``."""
    symbol, sep, stream = topic.partition("@")
    if not sep or not symbol.isalnum():
        return None
    if stream in ("trade", "aggTrade"):
        return "trade"
    if stream.startswith("depth"):
        return "book"
    return None
