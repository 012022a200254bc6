"""Inbound WebSocket messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WebSocketResponse"]


@dataclass(slots=True)
class WebSocketResponse:
    """One received data frame, decoded.

    ``data`` is the parsed JSON value for a text frame that is JSON, the ``str`` for other text
    and ``bytes`` for a binary frame (the default decoding; see ``networkpype.wire.decoding``
    for the others). A post-processor may set ``data = None`` to tell the application to ignore
    the message. One fresh object is made per frame; nothing else holds it.

    ``is_binary`` says which kind of frame it was: True for a binary frame, False for a text
    frame, whatever ``data`` became (a custom decoder may turn both into the same type).
    ``WebSocketResponse(data)`` is a text message; ``WebSocketResponse(data, is_binary=True)``
    a binary one.
    """

    data: Any
    # Keyword-only: subclasses add positional fields after ``data``.
    is_binary: bool = field(default=False, kw_only=True)
