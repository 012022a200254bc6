"""The loopback demo server the library ships for its demo, examples, tests and benchmarks.

``from networkpype.demo import DemoServer, DemoServerThread``; see :mod:`networkpype.demo.server`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from networkpype.demo.server import (
        ConnectionStatistics,
        DemoServer,
        DemoServerStatistics,
        DemoServerThread,
    )

__all__ = ["ConnectionStatistics", "DemoServer", "DemoServerStatistics", "DemoServerThread"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m networkpype.demo.server` does not find the module
    # already imported by its package (runpy would warn).
    if name in __all__:
        from networkpype.demo import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
