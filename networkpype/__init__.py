"""networkpype: actor-supervised WebSocket connections for long-running programs.

``NetworkPype`` is the facade a host program starts and stops; the NetworkPype API lives at
its usual import paths (``networkpype.factory``, ``networkpype.websocket.*``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from networkpype.facade import NetworkPype

__all__ = ["NetworkPype", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `import networkpype.protocol` stays free of I/O modules.
    if name == "NetworkPype":
        from networkpype.facade import NetworkPype

        return NetworkPype
    raise AttributeError(f"module 'networkpype' has no attribute {name!r}")
