"""Settings, each defined once: the per-connection options object and the enumerated values.

A setting lives in one frozen options object, with its default, its unit and its check (a
``ConfigurationError`` naming it). ``ConnectionOptions`` here holds what every (re)opening of
one WebSocket needs; the managers' own options are in :mod:`networkpype.websocket.options`.
The seed's keyword signatures (``WebSocketManager.connect(ping_timeout=10, ...)`` and the
rest) are adapters that build these objects; each also takes ``options=`` directly. A new
setting is a field of its options object, and nothing else: code reads it from there.

Pure, as the rest of :mod:`networkpype.protocol`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Final, Literal, TypeVar, get_args

import msgspec

from networkpype.protocol.errors import ConfigurationError

__all__ = [
    "DEFAULT_COMPRESS",
    "DEFAULT_MAX_QUEUE",
    "GAVE_UP_POLICIES",
    "OVERFLOW_POLICIES",
    "ConnectionOptions",
    "OnGaveUp",
    "Overflow",
    "check_choice",
    "check_queue",
    "compress_window_bits",
    "keywords_of",
    "options_or_keywords",
]

Overflow = Literal["block", "drop_oldest", "error"]
"""What a full queue towards a consumer does (see ``DeliveryQueue``)."""
OVERFLOW_POLICIES: Final[tuple[Overflow, ...]] = get_args(Overflow)

OnGaveUp = Literal["continue", "stop"]
"""What one connection given up on does to a manager's other connections and its stream."""
GAVE_UP_POLICIES: Final[tuple[OnGaveUp, ...]] = get_args(OnGaveUp)

DEFAULT_MAX_QUEUE: Final = 10_000
"""Messages buffered towards the consumer before the reader stops reading the socket."""

DEFAULT_COMPRESS: Final = 0
"""permessage-deflate is not offered by default (see ``WebSocketConnection.connect``)."""


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """``ConfigurationError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigurationError(f"{name}={value!r}: use one of {', '.join(allowed)}")


def check_queue(max_queue: int, overflow: str) -> None:
    """``ConfigurationError`` for a queue bound below 1 or an unknown overflow policy."""
    if max_queue < 1:
        raise ConfigurationError(f"max_queue must be at least 1, got {max_queue}")
    check_choice("overflow", overflow, OVERFLOW_POLICIES)


def compress_window_bits(compress: int | bool) -> int:
    """aiohttp's ``compress`` of our ``compress=``: 0 (off), or the LZ77 window bits the
    client offers, 9-15 (``True`` is 15, zlib's largest); raises ``ConfigurationError``."""
    if compress is True:
        return 15
    if compress is False or compress == 0:
        return 0
    if not isinstance(compress, int) or not 9 <= compress <= 15:
        raise ConfigurationError(
            f"compress={compress!r}: use False/0 (off), True or window bits 9-15 (zlib "
            "cannot inflate with 8)"
        )
    return compress


class ConnectionOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The settings of one managed WebSocket, applied at each (re)opening. Seconds for every
    duration; None (or 0) turns a check off.

    ``ping_interval``: a ping is sent when no frame has arrived for this long.
    ``pong_timeout``: after a ping, the link is declared dead (half-open) when no frame at all
    arrives within this long. ``no_data_timeout``: dead when no *data* frame arrives for this
    long. ``app_ping_interval``/``app_ping_payload``: a text frame sent on a schedule for
    venues that want application-level pings. ``message_timeout``: the consumer gets
    ``MessageTimeoutError`` when no message arrives for this long. ``headers`` go with the
    upgrade request (names and values made ``str``); ``verify_ssl``: check the server's
    certificate. ``compress``: permessage-deflate offered to the server, as window bits
    9-15 (``True``: 15), 0/``False`` for none; ``ConfigurationError`` for anything else.

    ``WebSocketManager.connect(url, options=ConnectionOptions(...))`` takes it whole; the
    seed's keywords of ``connect`` build one (``ping_timeout`` there is the default of both
    ``ping_interval`` and ``pong_timeout``).
    """

    message_timeout: float | None = None
    headers: dict[str, str] | None = None
    verify_ssl: bool = True
    ping_interval: float | None = 10.0
    pong_timeout: float = 10.0
    no_data_timeout: float | None = None
    app_ping_interval: float | None = None
    app_ping_payload: str = "ping"
    compress: int = DEFAULT_COMPRESS

    def __post_init__(self) -> None:
        # Normalised here, so every reader sees one form: window bits, str headers.
        msgspec.structs.force_setattr(self, "compress", compress_window_bits(self.compress))
        if self.headers:
            headers = {str(k): str(v) for k, v in self.headers.items()}
            msgspec.structs.force_setattr(self, "headers", headers)


T = TypeVar("T")


@cache
def _keyword_defaults(build: Callable[..., Any]) -> Mapping[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(build).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def keywords_of(build: Callable[..., Any], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``namespace`` (an adapter's ``locals()``) that are keywords of
    ``build``: every keyword of an adapter named as a setting reaches the options object, so
    none can be accepted and forgotten."""
    names = _keyword_defaults(build)
    return {name: value for name, value in namespace.items() if name in names}


def options_or_keywords(
    where: str, options: T | None, build: Callable[..., T], keywords: Mapping[str, Any]
) -> T:
    """The options object of a seed signature (``where``, for the error): ``options`` when
    given, else ``build(**keywords)``. Settings given both ways raise ``ConfigurationError``
    (a keyword left at ``build``'s default is not given), naming them."""
    if options is None:
        return build(**keywords)
    defaults = _keyword_defaults(build)
    unknown = [name for name in keywords if name not in defaults]
    if unknown:
        raise TypeError(f"{where}: unexpected keyword argument {unknown[0]!r}")
    both = [name for name, value in keywords.items() if value != defaults[name]]
    if both:
        raise ConfigurationError(
            f"{where}: {', '.join(both)} given both as keyword and in options=; give each "
            "setting once"
        )
    return options
