"""A second style of venue rules: one sequence number per message and a CRC32 checksum of
the top levels after each update (as OKX, Kraken and others do, each with its own fields).

A diff ``{"seq": n, "b": [[p, q], ...], "a": [...], "c": crc}`` applies to a book at
sequence ``n - 1``; a snapshot ``{"seq": n, "bids": [...], "asks": [...]}`` is the book at
``n``. After every update the book's top ``checksum_depth`` levels, formatted with
``price_format``/``quantity_format`` and interleaved ``bid1:ask1:bid2:ask2:...`` (each
level ``price:quantity``; a shorter side just ends), must have the CRC32 the venue sent:
unlike sequence numbers alone, this also catches a book that went wrong without a gap (a
bad snapshot, a bug).

The field names and formats are this plug-in's settings; the exchange simulator
(:mod:`networkpype.demo.exchange`) sends ``seq`` and ``c`` beside Binance's fields, so
both plug-ins run against it.
"""

from __future__ import annotations

import zlib
from typing import Any

from networkpype.books.book import Level, OrderBook
from networkpype.books.rules import (
    Diff,
    Relation,
    Snapshot,
    SnapshotRequest,
    consecutive,
    parse_levels,
    require_int,
    require_mapping,
)
from networkpype.protocol.errors import ConfigurationError

__all__ = ["SequencedChecksumRules", "top_levels_checksum"]


def top_levels_checksum(
    bids: list[Level],
    asks: list[Level],
    price_format: str = ".8f",
    quantity_format: str = ".8f",
) -> int:
    """The unsigned CRC32 of ``bid1:ask1:bid2:ask2:...`` (best first, each level
    ``price:quantity`` formatted with the given ``format()`` specs)."""
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        for side in (bids, asks):
            if i < len(side):
                price, quantity = side[i]
                parts.append(f"{format(price, price_format)}:{format(quantity, quantity_format)}")
    return zlib.crc32(":".join(parts).encode())


class SequencedChecksumRules:
    """The per-message-sequence style (see the module docstring).

    ``topic_format`` makes the topic from the lower-case symbol; ``snapshot_path`` and
    ``limit`` make the REST request (``?symbol=<SYMBOL>&limit=<limit>``) within the
    throttler's ``limit_id``; ``checksum_depth`` levels per side are checksummed.
    """

    name = "sequenced-checksum"

    def __init__(
        self,
        *,
        topic_format: str = "{symbol}@depth",
        snapshot_path: str = "/api/v3/depth",
        limit: int = 100,
        limit_id: str = "api/v3/depth",
        weight: int = 1,
        checksum_depth: int = 10,
        price_format: str = ".8f",
        quantity_format: str = ".8f",
    ) -> None:
        if checksum_depth < 1:
            raise ConfigurationError(f"checksum_depth must be >= 1, got {checksum_depth}")
        if "{symbol}" not in topic_format:
            raise ConfigurationError(f"topic_format must contain {{symbol}}: {topic_format!r}")
        self.topic_format = topic_format
        self.snapshot_path = snapshot_path
        self.limit = limit
        self.limit_id = limit_id
        self.weight = weight
        self.checksum_depth = checksum_depth
        self.price_format = price_format
        self.quantity_format = quantity_format

    def topic(self, symbol: str) -> str:
        """``topic_format`` with the lower-case symbol."""
        return self.topic_format.format(symbol=symbol.lower())

    def snapshot_request(self, symbol: str) -> SnapshotRequest:
        """``GET <snapshot_path>?symbol=<SYMBOL>&limit=<limit>``."""
        params: dict[str, str | int] = {"symbol": symbol, "limit": self.limit}
        return SnapshotRequest(self.snapshot_path, params, self.limit_id, self.weight)

    def parse_snapshot(self, payload: Any) -> Snapshot:
        """``{"seq": n, "bids": [...], "asks": [...]}``; the checksum is computed, not read
        (the snapshot has none of its own: the first diff's checksum covers it)."""
        body = require_mapping(payload, "snapshot")
        return Snapshot(
            require_int(body, "seq", "snapshot"),
            parse_levels(body.get("bids"), "snapshot bids"),
            parse_levels(body.get("asks"), "snapshot asks"),
        )

    def parse_diff(self, data: Any) -> Diff:
        """``{"seq": n, "b": [...], "a": [...], "c": crc}``."""
        event = require_mapping(data, "diff")
        seq = require_int(event, "seq", "diff")
        return Diff(
            seq,
            seq,
            parse_levels(event.get("b"), "diff b"),
            parse_levels(event.get("a"), "diff a"),
            require_int(event, "c", "diff"),
        )

    def relate(self, update_id: int, diff: Diff, *, bridging: bool) -> Relation:
        """Stale when ``seq <= update_id``, next when ``seq == update_id + 1``, else a
        gap (after a snapshot too)."""
        return consecutive(update_id, diff)

    def verify(self, book: OrderBook, checksum: int | None) -> str | None:
        """Compare the CRC32 of the book's top levels with ``checksum`` (``None``: nothing
        to compare)."""
        if checksum is None:
            return None
        depth = self.checksum_depth
        ours = top_levels_checksum(
            book.bids(depth), book.asks(depth), self.price_format, self.quantity_format
        )
        if ours == checksum:
            return None
        return f"checksum mismatch at {book.update_id}: venue {checksum}, book {ours}"
