"""What a test received, narrowed to the type it expects.

``WebSocketManager.receive()`` is typed ``WebSocketResponse | Any | None`` (a post-processor
may return anything; None once disconnected and drained): a test that expects a message says
so with :func:`response`, which fails on anything else.
"""

from __future__ import annotations

from networkpype.websocket.response import WebSocketResponse


def response(item: object) -> WebSocketResponse:
    """``item``, asserted to be a :class:`WebSocketResponse` (not None, not an event)."""
    assert isinstance(item, WebSocketResponse), f"expected a WebSocketResponse, got {item!r}"
    return item
