"""The loopback demo server the library ships for its demo, examples, tests and benchmarks.

``from networkpype.demo import DemoServer, DemoServerThread``; see :mod:`networkpype.demo.server`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from networkpype.demo.server import DemoServer
    from networkpype.demo.statistics import ConnectionStatistics, DemoServerStatistics
    from networkpype.demo.thread import DemoServerThread

__all__ = ["ConnectionStatistics", "DemoServer", "DemoServerStatistics", "DemoServerThread"]

_HOMES = {
    "ConnectionStatistics": "statistics",
    "DemoServer": "server",
    "DemoServerStatistics": "statistics",
    "DemoServerThread": "thread",
}


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m networkpype.demo.server` does not find the module
    # already imported by its package (runpy would warn).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
