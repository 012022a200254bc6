"""Outbound WebSocket messages.

A request says what to send and how the pipeline treats it: ``throttler_limit_id`` names the
rate limit the send counts against (applied, unlike the seed, which only declared it) and
``is_auth_required`` routes it through ``Auth.ws_authenticate``. The pipeline works on a deep
copy, so the caller's object is never mutated; a recorded subscription keeps the caller's
original so that it is processed and signed afresh at every replay.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = [
    "WebSocketBinaryRequest",
    "WebSocketJSONRequest",
    "WebSocketPlainTextRequest",
    "WebSocketRequest",
]

_json_encode = msgspec.json.Encoder().encode


@dataclass
class WebSocketRequest(ABC):
    """Base of every outbound message; subclasses decide the frame."""

    payload: Any
    throttler_limit_id: str | None = None
    is_auth_required: bool = False

    @abstractmethod
    def to_frame(self) -> str | bytes:
        """The frame to send: ``str`` goes out as one text frame, ``bytes`` as one binary."""

    def copy(self) -> WebSocketRequest:
        """A deep copy that pre-processors and auth may change freely."""
        return copy.deepcopy(self)


@dataclass
class WebSocketJSONRequest(WebSocketRequest):
    """``payload`` (dict, list or any JSON-encodable value) as one text frame of JSON."""

    payload: Any

    def to_frame(self) -> str:
        return _json_encode(self.payload).decode()


@dataclass
class WebSocketPlainTextRequest(WebSocketRequest):
    """``payload`` (a ``str``) as one text frame, sent as is (``"PING"`` protocols)."""

    payload: str

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

    def to_frame(self) -> bytes:
        if not isinstance(self.payload, bytes | bytearray | memoryview):
            raise TypeError(
                f"WebSocketBinaryRequest.payload must be bytes, not {type(self.payload).__name__}"
            )
        return bytes(self.payload)
