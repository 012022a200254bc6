"""The seed's import path of the WebSocket requests; they live in
:mod:`networkpype.wire.request`."""

from networkpype.wire.request import (
    WebSocketBinaryRequest,
    WebSocketJSONRequest,
    WebSocketPlainTextRequest,
    WebSocketRequest,
)

__all__ = [
    "WebSocketBinaryRequest",
    "WebSocketJSONRequest",
    "WebSocketPlainTextRequest",
    "WebSocketRequest",
]
