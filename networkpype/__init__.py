"""networkpype: actor-supervised WebSocket connections for long-running programs.

``NetworkPype`` is the facade a host program starts and stops; the NetworkPype API lives at
its usual import paths (``networkpype.factory``, ``networkpype.websocket.*``, ...).
"""

from networkpype.facade import NetworkPype

__all__ = ["NetworkPype", "__version__"]

__version__ = "0.1.0"
