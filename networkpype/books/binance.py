"""Binance spot's diff-depth rules (``<symbol>@depth`` streams, ``GET /api/v3/depth``).

As Binance documents "How to manage a local order book correctly": buffer the stream's
events, fetch a snapshot, drop every event with ``u <= lastUpdateId``; the first event
applied must have ``U <= lastUpdateId + 1 <= u`` (if the snapshot is older than the first
buffered event, fetch another); from then on each event's ``U`` is the previous event's
``u + 1``, and anything else means events were missed: start over. Binance sends no
checksum.
"""

from __future__ import annotations

from typing import Any

from networkpype.books.book import OrderBook
from networkpype.books.errors import BookDataError
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
from networkpype.limits.rate_limit import LinkedLimitWeightPair, RateLimit
from networkpype.protocol.errors import ConfigurationError

__all__ = ["REQUEST_WEIGHT", "BinanceSpotRules", "snapshot_weight"]

REQUEST_WEIGHT = "REQUEST_WEIGHT"
"""The limit id of Binance spot's IP request-weight pool (6000 a minute)."""

_SPEEDS = (None, "100ms", "1000ms")


def snapshot_weight(limit: int) -> int:
    """The request weight of ``GET /api/v3/depth`` with ``limit`` levels (Binance spot:
    5 up to 100 levels, 25 up to 500, 50 up to 1000, 250 up to 5000)."""
    if not 1 <= limit <= 5000:
        raise ConfigurationError(f"snapshot limit must be within 1..5000 levels, got {limit}")
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


class BinanceSpotRules:
    """Binance spot's plug-in (see the module docstring).

    ``limit``: levels per side in a snapshot (it sets the snapshot's weight; keep it above
    the depth the stream updates, or levels beyond it are unknown until updated).
    ``speed``: the stream's update speed, ``None`` (1000 ms, ``<symbol>@depth``) or
    ``"100ms"``/``"1000ms"`` (``<symbol>@depth@100ms``). ``limit_id``: the throttler limit
    of the snapshot request; :meth:`rate_limits` declares it.
    """

    name = "binance-spot"

    def __init__(
        self, *, limit: int = 1000, speed: str | None = None, limit_id: str = "api/v3/depth"
    ) -> None:
        if speed not in _SPEEDS:
            raise ConfigurationError(f"speed must be one of {_SPEEDS}, got {speed!r}")
        self.weight = snapshot_weight(limit)
        self.limit = limit
        self.speed = speed
        self.limit_id = limit_id

    def rate_limits(
        self, request_weight: int = 6000, interval: float = 60.0, latency_guard: float = 1.0
    ) -> list[RateLimit]:
        """The limits to give the throttler: the IP weight pool (``request_weight`` per
        ``interval`` seconds; Binance spot: 6000 a minute) and the snapshot's limit, which
        draws :attr:`weight` from the pool.

        Both are declared over ``interval + latency_guard`` seconds: the throttler counts a
        request when it starts, the venue when it arrives, and a request that the network
        delays less than an earlier one must not land inside the venue's window together
        with it (the throttler's ``safety_margin_pct`` leaves room in count, this in time).
        """
        if latency_guard < 0:
            raise ConfigurationError(f"latency_guard must be >= 0 s, got {latency_guard}")
        window = interval + latency_guard
        return [
            RateLimit(REQUEST_WEIGHT, request_weight, window),
            RateLimit(
                self.limit_id,
                request_weight,
                window,
                weight=self.weight,
                linked_limits=[LinkedLimitWeightPair(REQUEST_WEIGHT, self.weight)],
            ),
        ]

    def topic(self, symbol: str) -> str:
        """``<symbol>@depth`` (lower-case), with ``@<speed>`` when one was chosen."""
        suffix = f"@{self.speed}" if self.speed else ""
        return f"{symbol.lower()}@depth{suffix}"

    def snapshot_request(self, symbol: str) -> SnapshotRequest:
        """``GET /api/v3/depth?symbol=<SYMBOL>&limit=<limit>``."""
        return SnapshotRequest(
            "/api/v3/depth", {"symbol": symbol, "limit": self.limit}, self.limit_id, self.weight
        )

    def parse_snapshot(self, payload: Any) -> Snapshot:
        """``{"lastUpdateId": n, "bids": [[p, q], ...], "asks": [...]}``."""
        body = require_mapping(payload, "depth snapshot")
        return Snapshot(
            require_int(body, "lastUpdateId", "depth snapshot"),
            parse_levels(body.get("bids"), "depth snapshot bids"),
            parse_levels(body.get("asks"), "depth snapshot asks"),
        )

    def parse_diff(self, data: Any) -> Diff:
        """A ``depthUpdate`` event (``U``, ``u``, ``b``, ``a``), bare or inside a combined
        stream's ``{"stream": ..., "data": {...}}``."""
        event = require_mapping(data, "depth update")
        inner = event.get("data")
        if isinstance(inner, dict):
            event = inner
        first = require_int(event, "U", "depth update")
        last = require_int(event, "u", "depth update")
        if last < first:
            raise BookDataError(f"depth update: u={last} is below U={first}")
        return Diff(
            first,
            last,
            parse_levels(event.get("b"), "depth update b"),
            parse_levels(event.get("a"), "depth update a"),
        )

    def relate(self, update_id: int, diff: Diff, *, bridging: bool) -> Relation:
        """Stale when ``u <= update_id``; after a snapshot, next when ``U <= update_id +
        1``; later, next only when ``U == update_id + 1``."""
        if bridging:
            if diff.last_id <= update_id:
                return Relation.STALE
            return Relation.APPLY if diff.first_id <= update_id + 1 else Relation.GAP
        return consecutive(update_id, diff)

    def verify(self, book: OrderBook, checksum: int | None) -> str | None:
        """Binance sends no checksum: nothing to verify."""
        return None
