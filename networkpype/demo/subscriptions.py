"""The exchange simulator's subscription requests, decided without a socket (pure).

``decide(text, subscribed, cap)`` reads one text frame of the Binance-style protocol and
returns the reply to send and the topics to add or remove; nothing is changed when the reply
is an error. Error codes follow Binance's stream API: 2, invalid request (unknown method,
bad ``params``, a topic of unknown format, over the per-connection cap); 3, invalid JSON.
Error replies carry ``"topics"``, the rejected topics, beside ``msg`` (a simulator
extension: Binance names them only in the message).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import msgspec

from networkpype.demo.market import topic_kind

__all__ = ["INVALID_JSON", "INVALID_REQUEST", "Decision", "decide", "error_reply"]

INVALID_REQUEST = 2
INVALID_JSON = 3
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS")

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: send ``reply``; then (only if the reply is not an
    error) add ``subscribe`` and remove ``unsubscribe``, both in request order."""

    reply: dict[str, Any]
    subscribe: tuple[str, ...] = field(default=())
    unsubscribe: tuple[str, ...] = field(default=())


def error_reply(
    request_id: Any, code: int, msg: str, topics: list[str] | None = None
) -> dict[str, Any]:
    """``{"error": {"code": code, "msg": msg[, "topics": topics]}, "id": request_id}``."""
    error: dict[str, Any] = {"code": code, "msg": msg}
    if topics is not None:
        error["topics"] = topics
    return {"error": error, "id": request_id}


def decide(text: str, subscribed: Collection[str], cap: int) -> Decision:
    """Decide the request ``text`` on a connection already subscribed to ``subscribed``,
    allowed at most ``cap`` topics."""
    try:
        request = _decode(text)
    except msgspec.DecodeError as exc:
        return Decision(error_reply(None, INVALID_JSON, f"Invalid JSON: {exc}"))
    if not isinstance(request, dict):
        return Decision(error_reply(None, INVALID_JSON, "Invalid JSON: expected an object"))
    method, request_id = request.get("method"), request.get("id")
    if method not in _METHODS:
        msg = f"Invalid request: unknown method {method!r}"
        return Decision(error_reply(request_id, INVALID_REQUEST, msg))
    if method == "LIST_SUBSCRIPTIONS":
        return Decision({"result": list(subscribed), "id": request_id})
    params = request.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        msg = "Invalid request: params must be a list of stream names"
        return Decision(error_reply(request_id, INVALID_REQUEST, msg))
    unknown = [p for p in params if topic_kind(p) is None]
    if unknown:
        names = ", ".join(map(repr, unknown))
        msg = f"Invalid request: unknown stream format {names}: use <symbol>@trade or @depth"
        return Decision(error_reply(request_id, INVALID_REQUEST, msg, unknown))
    ack = {"result": None, "id": request_id}
    if method == "UNSUBSCRIBE":
        return Decision(ack, unsubscribe=tuple(t for t in dict.fromkeys(params) if t in subscribed))
    new = [t for t in dict.fromkeys(params) if t not in subscribed]
    if len(subscribed) + len(new) > cap:
        names = ", ".join(map(repr, new))
        msg = (
            f"Invalid request: {len(subscribed)} + {len(new)} streams would exceed the limit "
            f"of {cap} streams per connection; rejected: {names}"
        )
        return Decision(error_reply(request_id, INVALID_REQUEST, msg, new))
    return Decision(ack, subscribe=tuple(new))
