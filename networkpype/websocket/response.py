"""Inbound WebSocket messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["WebSocketResponse"]


@dataclass(slots=True)
class WebSocketResponse:
    """One received data frame, decoded.

    ``data`` is the parsed JSON value for a text frame that is JSON, the ``str`` for other text
    and ``bytes`` for a binary frame (the default decoding; see ``networkpype.websocket.decoding``
    for the others). A post-processor may set ``data = None`` to tell the application to ignore
    the message. One fresh object is made per frame; nothing else holds it.
    """

    data: Any
