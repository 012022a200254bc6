"""The loopback servers the library ships for its demo, examples, tests and benchmarks.

``from networkpype.demo import DemoServer, DemoServerThread``: the demo protocol and the
benchmark stream (:mod:`networkpype.demo.server`). ``from networkpype.demo import
ExchangeSimulator, ExchangeSimulatorThread``: a venue that enforces Binance spot's limits
and close codes, with fault hooks (:mod:`networkpype.demo.exchange`); its order books
(``DepthVenue``, :mod:`networkpype.demo.depth_venue`) and ``BookAudit``, which checks a
client's books against them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from networkpype.demo.book_audit import BookAudit
    from networkpype.demo.depth_venue import DepthVenue
    from networkpype.demo.exchange import ExchangeSimulator
    from networkpype.demo.limits import SlidingWindow
    from networkpype.demo.server import DemoServer
    from networkpype.demo.statistics import (
        DemoConnectionStatistics,
        DemoServerStatistics,
        ExchangeConnectionStatistics,
        ExchangeSimulatorStatistics,
        TopicStatistics,
        Violation,
    )
    from networkpype.demo.thread import DemoServerThread, ExchangeSimulatorThread

__all__ = [
    "BookAudit",
    "DemoConnectionStatistics",
    "DemoServer",
    "DemoServerStatistics",
    "DemoServerThread",
    "DepthVenue",
    "ExchangeConnectionStatistics",
    "ExchangeSimulator",
    "ExchangeSimulatorStatistics",
    "ExchangeSimulatorThread",
    "SlidingWindow",
    "TopicStatistics",
    "Violation",
]

_HOMES = {
    "BookAudit": "book_audit",
    "DemoConnectionStatistics": "statistics",
    "DemoServer": "server",
    "DemoServerStatistics": "statistics",
    "DemoServerThread": "thread",
    "DepthVenue": "depth_venue",
    "ExchangeConnectionStatistics": "statistics",
    "ExchangeSimulator": "exchange",
    "ExchangeSimulatorStatistics": "statistics",
    "ExchangeSimulatorThread": "thread",
    "SlidingWindow": "limits",
    "TopicStatistics": "statistics",
    "Violation": "statistics",
}


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m networkpype.demo.server` does not find the module
    # already imported by its package (runpy would warn).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
