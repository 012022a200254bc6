"""The exchange simulator's order books: depth diff streams with Binance-style update ids,
a REST snapshot endpoint with Binance's request weights, a ground-truth book per symbol,
and faults that break clients' books.

The simulator mounts one :class:`DepthVenue` (``ExchangeSimulator.depth``):

* **Streams**: every ``<symbol>@depth...`` topic of a symbol carries the updates of the
  symbol's :class:`~networkpype.demo.depth.DepthTruth`: ``{"e": "depthUpdate", "E", "s",
  "U", "u", "b", "a", "c", "stream", "seq"}`` where ``U``/``u`` are Binance's update ids,
  ``seq`` the symbol's update count (one per event, a per-message sequence) and ``c`` the
  CRC32 of the top 10 levels after the update (both for the second plug-in style,
  :mod:`networkpype.books.sequenced`). The book moves ``rate`` times a second from the
  first subscription on, whether or not anyone listens.
* **Snapshots**: ``GET /api/v3/depth?symbol=BTCUSDT&limit=100`` answers ``{"lastUpdateId",
  "seq", "bids", "asks"}`` (best first, ``limit`` levels a side, 1..5000, default 100) and
  costs Binance's weight (5 up to 100 levels, 25 up to 500, 50 up to 1000, 250 beyond).
  More than ``rest_weight_limit`` weight within any sliding ``rest_weight_window`` seconds is
  answered HTTP 429 with ``Retry-After`` and counted in ``rest_violations``; an unknown
  symbol (no depth topic subscribed yet) or a bad ``limit`` is answered 400 with Binance's
  ``{"code": -1121 / -1100, "msg"}``.
* **Faults**: :meth:`DepthVenue.drop_diffs` (the next updates of a symbol reach nobody: the
  ids jump), :meth:`DepthVenue.stale_snapshots` (the next snapshots are as the book was some
  updates ago); connection resets are the simulator's own (``kill``, ``kill_all``).
* **Ground truth**: :meth:`DepthVenue.truth` gives a symbol's book and its history, for
  checking a client's book at the update id it reports
  (:class:`~networkpype.demo.depth.TruthReplica`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable

import msgspec
from aiohttp import web

from networkpype.demo.depth import DepthTruth, lots_text, price_text
from networkpype.demo.feeds import TopicFeed
from networkpype.demo.frames import frame
from networkpype.demo.market import SyntheticMarket

__all__ = ["DepthTopicFeed", "DepthVenue", "WeightWindow", "snapshot_weight"]

logger = logging.getLogger("networkpype.demo.exchange")

_encode = msgspec.json.Encoder().encode
_YIELD_EVERY = 64  # a feed catching up yields to the loop this often (fairness)


def snapshot_weight(limit: int) -> int:
    """Binance spot's weight of ``GET /api/v3/depth`` with ``limit`` levels."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class WeightWindow:
    """At most ``limit`` units of weight in any sliding ``window`` seconds (monotonic
    times, not decreasing between calls). ``try_acquire`` counts a request only when it
    fits, as Binance does not count refused requests."""

    __slots__ = ("_events", "_used", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or not (window > 0 and math.isfinite(window)):
            raise ValueError(f"need limit >= 1 and a finite window > 0, not {limit}, {window}")
        self.limit, self.window = limit, window
        self._events: deque[tuple[float, int]] = deque()
        self._used = 0

    def used(self, now: float) -> int:
        """Weight inside the window ending at ``now``."""
        events = self._events
        while events and now - events[0][0] >= self.window:
            self._used -= events.popleft()[1]
        return self._used

    def try_acquire(self, now: float, weight: int) -> bool:
        """Count ``weight`` at ``now`` if it fits; False (uncounted) if not."""
        if self.used(now) + weight > self.limit:
            return False
        self._events.append((now, weight))
        self._used += weight
        return True

    def retry_after(self, now: float, weight: int) -> float:
        """Seconds from ``now`` until ``weight`` would fit."""
        used = self.used(now)
        for at, w in self._events:
            if used + weight <= self.limit:
                break
            used -= w
            wait = at + self.window - now
            if used + weight <= self.limit:
                return max(0.0, wait)
        return 0.0


class _SymbolFeed:
    """The producer of one symbol: steps its truth ``rate`` times a second and sends each
    update to the subscribers of each of the symbol's depth topics."""

    def __init__(self, venue: DepthVenue, truth: DepthTruth) -> None:
        self.venue = venue
        self.truth = truth
        self.topics: dict[str, DepthTopicFeed] = {}
        self.drop = 0  # updates still to drop (a fault)
        self.running = False

    async def run(self, rate: float, max_events: int) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        start = loop.time()
        truth, topics = self.truth, self.topics
        for n in range(1, max_events + 1):
            delay = start + (n - 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif n % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            step = truth.step()
            seq = step.sequence
            for feed in topics.values():
                feed.last_sequence = seq
            if self.drop:
                self.drop -= 1
                self.venue.diffs_dropped += 1
                continue
            if not any(feed.subscribers for feed in topics.values()):
                continue
            event = truth.event(step)
            event["E"] = int(time.time() * 1000)
            event["seq"] = seq
            for topic, feed in topics.items():
                if not feed.subscribers:
                    continue
                event["stream"] = topic
                data = frame(_encode(event))
                sent = False
                for subscriber in list(feed.subscribers.values()):
                    sent = subscriber.deliver(data) or sent
                if sent:
                    feed.last_sequence_sent = seq


class DepthTopicFeed(TopicFeed):
    """A ``<symbol>@depth...`` topic of the simulator: a :class:`TopicFeed` whose events are
    the updates of the symbol's ground-truth book (one producer per symbol, whichever of its
    topics runs first)."""

    def __init__(self, topic: str, symbol_feed: _SymbolFeed, *, rate: float, max_events: int):
        super().__init__(
            topic, SyntheticMarket(symbol_feed.truth.symbol), rate=rate, max_events=max_events
        )
        self._symbol_feed = symbol_feed

    async def run(self) -> None:
        """Run the symbol's producer, unless another of its topics runs it already."""
        feed = self._symbol_feed
        if feed.running:
            return
        feed.running = True
        try:
            await feed.run(self.rate, self.max_events)
        finally:
            feed.running = False


class DepthVenue:
    """The simulator's order books (see the module docstring).

    ``levels``: levels per side of every symbol's book (at most; the snapshot's default
    ``limit`` of 100 covers them); ``history``: updates kept per symbol for checkers and
    stale snapshots; ``rest_weight_limit`` per ``rest_weight_window`` seconds: the REST weight
    allowed (Binance spot: 6000 a minute). Use it on the simulator's loop.
    """

    def __init__(
        self,
        *,
        levels: int = 50,
        history: int = 10_000,
        rest_weight_limit: int = 6000,
        rest_weight_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.levels = levels
        self.history = history
        self._weights = WeightWindow(rest_weight_limit, rest_weight_window)
        self._clock = clock
        self._symbols: dict[str, _SymbolFeed] = {}
        self._stale: list[tuple[str | None, int]] = []  # (symbol or any, updates behind)
        self.snapshots_served = 0
        self.stale_served = 0
        self.rest_violations = 0
        self.diffs_dropped = 0

    # -- mounting ------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Mount ``GET /api/v3/depth``."""
        app.router.add_get("/api/v3/depth", self._handle_depth)

    def feed(self, topic: str, *, rate: float, max_events: int) -> DepthTopicFeed:
        """The feed of depth topic ``topic`` (the simulator makes one per topic)."""
        symbol = topic.partition("@")[0].upper()
        symbol_feed = self._symbols.get(symbol)
        if symbol_feed is None:
            truth = DepthTruth(symbol, levels=self.levels, history=self.history)
            symbol_feed = self._symbols[symbol] = _SymbolFeed(self, truth)
        feed = DepthTopicFeed(topic, symbol_feed, rate=rate, max_events=max_events)
        symbol_feed.topics[topic] = feed
        return feed

    # -- ground truth ----------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols with a book (a depth topic was subscribed)."""
        return tuple(self._symbols)

    def truth(self, symbol: str) -> DepthTruth:
        """The ground-truth book of ``symbol``; ``KeyError`` if it has none."""
        return self._symbols[symbol.upper()].truth

    @property
    def rest_weight_used(self) -> int:
        """REST weight inside the current window."""
        return self._weights.used(self._clock())

    # -- faults ----------------------------------------------------------------------------

    def drop_diffs(self, symbol: str, count: int = 1) -> None:
        """The next ``count`` updates of ``symbol`` reach no subscriber (the book moves on:
        ``U`` jumps past the last ``u`` a client saw). ``KeyError`` if it has no book."""
        self._symbols[symbol.upper()].drop += count
        logger.info("dropping the next %d depth updates of %s", count, symbol.upper())

    def stale_snapshots(
        self, updates_behind: int, count: int = 1, *, symbol: str | None = None
    ) -> None:
        """The next ``count`` snapshots (of ``symbol``, or of any symbol) are the book as it
        was ``updates_behind`` updates ago (a venue whose snapshot lags its stream)."""
        if updates_behind < 1 or count < 1:
            raise ValueError(f"need updates_behind >= 1 and count >= 1: {updates_behind}, {count}")
        key = symbol.upper() if symbol is not None else None
        self._stale.extend([(key, updates_behind)] * count)

    # -- the REST endpoint -----------------------------------------------------------------

    def _take_stale(self, symbol: str) -> int:
        for i, (key, behind) in enumerate(self._stale):
            if key is None or key == symbol:
                del self._stale[i]
                return behind
        return 0

    async def _handle_depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "").upper()
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 5000:
            return _error(400, -1100, "Illegal characters found in parameter 'limit'.")
        weight = snapshot_weight(limit)
        now = self._clock()
        if not self._weights.try_acquire(now, weight):
            self.rest_violations += 1
            seconds = max(1, math.ceil(self._weights.retry_after(now, weight)))
            logger.info("REST weight limit exceeded: 429, Retry-After %d", seconds)
            return web.json_response(
                {"code": -1003, "msg": "Too much request weight used."},
                status=429,
                headers={"Retry-After": str(seconds)},
            )
        symbol_feed = self._symbols.get(symbol)
        if symbol_feed is None:
            return _error(400, -1121, "Invalid symbol.")
        truth = symbol_feed.truth
        behind = self._take_stale(symbol)
        update_id, sequence = truth.update_id, truth.sequence
        bids, asks = truth.bids, truth.asks
        if behind:
            update_id, undone, bids, asks = truth.levels_back(behind)
            sequence -= undone
            self.stale_served += 1
        self.snapshots_served += 1
        best_bids = sorted(bids, reverse=True)[:limit]
        return web.json_response(
            {
                "lastUpdateId": update_id,
                "seq": sequence,
                "bids": [[price_text(t), lots_text(bids[t])] for t in best_bids],
                "asks": [[price_text(t), lots_text(asks[t])] for t in sorted(asks)[:limit]],
            }
        )


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)
