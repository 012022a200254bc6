"""Subscription codecs: how a venue's subscribe messages carry topics, and how its replies
and data name them.

A codec turns lists of topics into subscribe/unsubscribe requests (at most
``max_topics_per_message`` topics each), recognises the venue's replies on the raw frame
(cheaply: every inbound frame is tested) and matches them to request ids, and names the
topic of a decoded data message (for per-topic streams). ``BinanceCodec`` is the reference:
``{"method": "SUBSCRIBE", "params": [...], "id": n}`` answered by ``{"result": null, "id": n}``
or ``{"error": {"code": c, "msg": "..."}, "id": n}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from networkpype.wire.request import WebSocketJSONRequest, WebSocketRequest

__all__ = ["BinanceCodec", "Reply", "TopicCodec"]


@dataclass(frozen=True, slots=True)
class Reply:
    """The venue's answer to request ``request_id``: ``error`` is None when accepted."""

    request_id: int
    error: str | None = None


class TopicCodec(Protocol):
    """What the sharded manager needs to know about a venue's subscription protocol."""

    max_topics_per_message: int

    reply_prefixes: tuple[bytes, ...] | None
    """Optional: every reply starts with one of these bytes, so other frames are passed by
    without a call into the codec (the hot path). None: ``parse_reply`` sees every frame."""

    def subscribe(self, topics: Sequence[str], request_id: int) -> WebSocketRequest: ...

    def unsubscribe(self, topics: Sequence[str], request_id: int) -> WebSocketRequest: ...

    def parse_reply(self, frame: bytes) -> Reply | None:
        """The reply in a raw text frame, or None for any other frame (called per frame:
        keep the common case, a data message, cheap)."""

    def topic_of(self, data: Any) -> str | None:
        """The topic of a decoded data message, or None if it names none."""


class _BinanceReply(msgspec.Struct):
    id: int | None = None
    result: Any = None
    error: Any = None


class BinanceCodec:
    """Binance-style JSON subscriptions (``method``/``params``/``id``).

    ``max_topics_per_message`` bounds ``params`` (Binance accepts long lists; smaller
    messages keep a rejection's blast radius small and pace evenly).
    """

    _REPLY_LIMIT = 512  # replies are short; data frames longer than this are never replies
    # Binance's replies put "result" or "error" first ({"result":null,"id":1}); "id" first is
    # accepted for servers that order keys differently.
    reply_prefixes: tuple[bytes, ...] | None = (b'{"result"', b'{"error"', b'{"id"')

    def __init__(self, max_topics_per_message: int = 50) -> None:
        if max_topics_per_message < 1:
            raise ValueError(f"max_topics_per_message must be >= 1, got {max_topics_per_message}")
        self.max_topics_per_message = max_topics_per_message
        self._decode_reply = msgspec.json.Decoder(_BinanceReply).decode

    def subscribe(self, topics: Sequence[str], request_id: int) -> WebSocketRequest:
        return WebSocketJSONRequest(
            payload={"method": "SUBSCRIBE", "params": list(topics), "id": request_id}
        )

    def unsubscribe(self, topics: Sequence[str], request_id: int) -> WebSocketRequest:
        return WebSocketJSONRequest(
            payload={"method": "UNSUBSCRIBE", "params": list(topics), "id": request_id}
        )

    def parse_reply(self, frame: bytes) -> Reply | None:
        if len(frame) > self._REPLY_LIMIT or b'"id"' not in frame:
            return None
        if b'"result"' not in frame and b'"error"' not in frame:
            return None
        try:
            reply = self._decode_reply(frame)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if reply.id is None:
            return None
        if reply.error is not None:
            error = reply.error
            text = error.get("msg", str(error)) if isinstance(error, dict) else str(error)
            code = error.get("code") if isinstance(error, dict) else None
            return Reply(reply.id, f"{text} (code {code})" if code is not None else text)
        return Reply(reply.id)

    def topic_of(self, data: Any) -> str | None:
        if not isinstance(data, dict):
            return None
        stream = data.get("stream")
        if isinstance(stream, str):
            return stream
        event, symbol = data.get("e"), data.get("s")
        if isinstance(event, str) and isinstance(symbol, str):
            return f"{symbol.lower()}@{event}"
        return None
