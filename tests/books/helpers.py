"""A maintainer over the exchange simulator, audited against its ground truth."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from networkpype.books import BinanceSpotRules, BookSettings, LiveBook, OrderBookMaintainer
from networkpype.books.rules import VenueRules
from networkpype.demo import ExchangeSimulator
from networkpype.demo.book_audit import BookAudit
from networkpype.demo.depth_venue import DepthVenue
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.sharded import ShardedWebSocketManager


@dataclass
class Books:
    sim: ExchangeSimulator
    maintainer: OrderBookMaintainer
    audit: BookAudit
    ws: ShardedWebSocketManager
    factory: ConnectionManagersFactory


def rest_url(sim: ExchangeSimulator) -> str:
    return f"http://127.0.0.1:{sim.port}"


@contextlib.asynccontextmanager
async def simulated_books(
    *,
    rules: VenueRules | None = None,
    rate: float = 50.0,
    weight: tuple[int, float] = (600, 1.0),
    venue_weight: tuple[int, float] | None = None,
    per_connection: int = 10,
    settings: BookSettings | None = None,
    ids: Literal["update", "sequence"] = "update",
    limits: list[RateLimit] | None = None,
    on_update: Callable[[LiveBook], Any] | None = None,
    sim_kwargs: dict[str, Any] | None = None,
    ws_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[Books]:
    """The simulator (REST weight ``venue_weight``, default ``weight``), a factory whose
    throttler declares ``weight`` for the snapshots (with a latency guard of a quarter of
    the window: loaded test machines delay some requests far more than others), a sharded manager of
    ``per_connection`` topics a connection, and a started maintainer whose every update is
    audited."""
    rules = rules or BinanceSpotRules(limit=100)
    limit, window = venue_weight or weight
    depth = DepthVenue(levels=20, rest_weight_limit=limit, rest_weight_window=window)
    async with ExchangeSimulator(rate=rate, depth=depth, **(sim_kwargs or {})) as sim:
        audit = BookAudit(sim.depth, ids=ids)
        if limits is None:
            limits = BinanceSpotRules(limit=100).rate_limits(*weight, latency_guard=weight[1] / 4)
        factory = ConnectionManagersFactory(throttler=AsyncThrottler(limits))
        try:
            ws = await factory.get_sharded_ws_manager(
                max_topics_per_connection=per_connection,
                min_send_interval=0.2,  # the simulator: 5 frames a second, as Binance
                **(ws_kwargs or {}),
            )
            await ws.connect(sim.url)
            rest = await factory.get_rest_manager()

            def check(book: LiveBook) -> None:
                audit.check(book)
                if on_update is not None:
                    on_update(book)

            maintainer = OrderBookMaintainer(
                ws, rest, rules, rest_url(sim), settings=settings, on_update=check
            )
            async with maintainer:
                yield Books(sim, maintainer, audit, ws, factory)
        finally:
            await factory.close()


def one_topic_per_message() -> dict[str, Any]:
    return {"codec": BinanceCodec(max_topics_per_message=1)}
