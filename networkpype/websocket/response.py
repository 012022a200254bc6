"""The seed's import path of :class:`WebSocketResponse`; it lives in
:mod:`networkpype.wire.response`."""

from networkpype.wire.response import (
    WebSocketResponse,
)

__all__ = [
    "WebSocketResponse",
]
