"""Outbound WebSocket messages.

A request says what to send and how the pipeline treats it: ``throttler_limit_id`` names the
rate limit the send counts against (applied, unlike the seed, which only declared it) and
``is_auth_required`` routes it through ``Auth.ws_authenticate``. The pipeline works on a deep
copy, so the caller's object is never mutated; a recorded subscription keeps the caller's
original so that it is processed and signed afresh at every replay.
"""

from __future__ import annotations

import copy
from abc import ABC
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:  # for annotations only: the connection module imports this one
    from networkpype.wire.connection import WebSocketConnection

__all__ = [
    "WebSocketBinaryRequest",
    "WebSocketJSONRequest",
    "WebSocketPlainTextRequest",
    "WebSocketRequest",
]

_json_encode = msgspec.json.Encoder().encode


@dataclass
class WebSocketRequest(ABC):
    """Base of every outbound message; a subclass says how it goes out by defining either
    method:

    - ``to_frame()``: the one frame to send (``str``: a text frame, ``bytes``: a binary
      frame); the library's request classes do this, and the manager then sends the frame
      without calling into the request again;
    - ``send_with_connection(connection)`` (NetworkPype's way): send it yourself on the
      ``WebSocketConnection`` (``send_frame``, ``_send_json``, ``_send_plain_text``). A class
      that overrides it is always sent through it, under a manager too.

    A class that defines neither raises ``NotImplementedError`` when sent.
    """

    payload: Any
    throttler_limit_id: str | None = None
    is_auth_required: bool = False

    def to_frame(self) -> str | bytes:
        """The frame to send: ``str`` goes out as one text frame, ``bytes`` as one binary."""
        raise NotImplementedError(
            f"{type(self).__name__} defines neither to_frame() nor send_with_connection(): "
            "define one of them to say how the request goes out"
        )

    async def send_with_connection(self, connection: WebSocketConnection) -> None:
        """Send this request on ``connection`` (by default: its ``to_frame()``)."""
        await connection.send_frame(self.to_frame())

    def copy(self) -> WebSocketRequest:
        """A deep copy that pre-processors and auth may change freely."""
        return copy.deepcopy(self)


@dataclass
class WebSocketJSONRequest(WebSocketRequest):
    """``payload`` (dict, list or any JSON-encodable value) as one text frame of JSON."""

    payload: Any
    throttler_limit_id: str | None = None
    is_auth_required: bool = False

    def to_frame(self) -> str:
        return _json_encode(self.payload).decode()


@dataclass
class WebSocketPlainTextRequest(WebSocketRequest):
    """``payload`` (a ``str``) as one text frame, sent as is (``"PING"`` protocols)."""

    payload: str
    throttler_limit_id: str | None = None
    is_auth_required: bool = False

    def to_frame(self) -> str:
        if not isinstance(self.payload, str):
            raise TypeError(
                f"WebSocketPlainTextRequest.payload must be str, not {type(self.payload).__name__}"
            )
        return self.payload


@dataclass
class WebSocketBinaryRequest(WebSocketRequest):
    """``payload`` (``bytes``-like) as one binary frame."""

    payload: bytes
    throttler_limit_id: str | None = None
    is_auth_required: bool = False

    def to_frame(self) -> bytes:
        if not isinstance(self.payload, bytes | bytearray | memoryview):
            raise TypeError(
                f"WebSocketBinaryRequest.payload must be bytes, not {type(self.payload).__name__}"
            )
        return bytes(self.payload)
