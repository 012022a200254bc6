"""How a received data frame becomes ``WebSocketResponse.data``.

Three decoders ship, chosen per connection and per manager with ``decoder=``:

* ``"json"`` (the seed's default, :class:`JSONOrTextDecoder`): a text frame that is JSON
  becomes the parsed value (msgspec), other text stays ``str``; binary stays ``bytes``.
* ``"raw"`` (:class:`RawDecoder`): text is delivered exactly as received (``str``), binary
  as ``bytes``: for exact echo or the user's own parser.
* a msgspec type (a ``Struct``, a union of Structs, ``dict[str, Any]``...) or a ready
  ``msgspec.json.Decoder`` (:class:`TypedDecoder`): text is decoded straight into that
  type, with no intermediate dict. A frame that does not match the type is delivered as its
  ``str`` (nothing is dropped) and logged at DEBUG.

JSON nested deeper than :data:`MAX_JSON_DEPTH` (arrays and objects inside each other) is
not parsed: the frame is delivered as its ``str``, by both JSON decoders, on every Python
version (msgspec's own limit is the interpreter's: on 3.11 its recursion limit, 1,000 less
the caller's stack, which the decoders lift for a frame within the limit; about 10,000
levels on 3.13, where a long payload is checked before it is parsed).

Frames reach decoders as the raw ``bytes`` of a text frame, which spares a ``str`` copy for
JSON. They are valid UTF-8: the connection checked them, and failed the connection with 1007
on a frame that is not (RFC 6455 §8.1), whatever the decoder.
"""

from __future__ import annotations

import logging
import re
import sys
from itertools import accumulate
from typing import Any, Protocol, TypeAlias, TypeVar

import msgspec

from networkpype.protocol.errors import ConfigurationError

__all__ = [
    "CHECKED_FROM",
    "MAX_JSON_DEPTH",
    "DecoderSpec",
    "JSONOrTextDecoder",
    "MessageDecoder",
    "RawDecoder",
    "TypedDecoder",
    "check_from",
    "make_decoder",
    "too_deep",
]

logger = logging.getLogger(__name__)


class MessageDecoder(Protocol):
    """Turns the payload of one data frame into ``WebSocketResponse.data``."""

    def decode_text(self, data: bytes) -> Any:
        """``data`` is the payload of a text frame, valid UTF-8."""

    def decode_binary(self, data: bytes) -> Any:
        """``data`` is the payload of a binary frame."""


def _text(data: bytes) -> str:
    # Checked by the connection before any decoder sees it: this never fails for a frame.
    return data.decode()


MAX_JSON_DEPTH = 1000
"""Deepest nesting of JSON arrays and objects that the JSON decoders parse; a text frame
nested deeper is delivered as its ``str``, on every Python version."""

CHECKED_FROM = 2 * MAX_JSON_DEPTH + 2
"""Payloads shorter than this (bytes) cannot nest deeper than ``MAX_JSON_DEPTH`` (each level
takes two brackets) and are not checked."""

_LIMIT_BOUNDS_MSGSPEC = sys.version_info < (3, 12)
"""Before 3.12, C code's nesting counts against the interpreter's recursion limit: msgspec
raises ``RecursionError`` past it, so while that limit is at most ``MAX_JSON_DEPTH``
whatever it parses is within the limit. From 3.12 C recursion has a bound of its own (about
10,000 levels)."""


def check_from() -> int:
    """The payload length from which a frame msgspec parses may nest deeper than
    ``MAX_JSON_DEPTH``, so ``too_deep()`` must say no first: ``CHECKED_FROM``, or never on
    Python 3.11 under a recursion limit of at most ``MAX_JSON_DEPTH`` (the default 1,000),
    where nothing is checked. The consumer loops ask once per iterator."""
    if _LIMIT_BOUNDS_MSGSPEC and sys.getrecursionlimit() <= MAX_JSON_DEPTH:
        return sys.maxsize
    return CHECKED_FROM


def _parse_within_limit(decode: Any, data: bytes) -> Any:
    """``decode(data)`` for a payload known to nest at most ``MAX_JSON_DEPTH`` levels that
    raised ``RecursionError`` (Python 3.11: the recursion limit less the caller's stack is
    below ``MAX_JSON_DEPTH``): again, the limit raised by ``MAX_JSON_DEPTH`` meanwhile."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + MAX_JSON_DEPTH)
    try:
        return decode(data)
    finally:
        sys.setrecursionlimit(limit)


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_NOT_MARKS = bytes(range(256)).translate(None, b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_ROUNDS = 8  # levels peeled off by bytes.replace before the rest is counted
_STEP = [0] * 256
_STEP[ord("[")] = 1
_STEP[ord("]")] = -1


def too_deep(data: bytes) -> bool:
    """True when the JSON text ``data`` nests arrays and objects deeper than
    ``MAX_JSON_DEPTH``. The decoders call it for payloads of ``CHECKED_FROM`` bytes or more
    only. Cheap for what cannot be: a payload near that size with more other bytes than a
    too-deep one could hold costs a C pass over a prefix, one with no more opening brackets
    than the limit one C pass; only past that are strings skipped and levels counted."""
    # Too deep takes CHECKED_FROM brackets, so at most `spare` other bytes: near that size a
    # prefix with more settles it (a ~1 KB message: its first ~200 bytes).
    spare = len(data) - CHECKED_FROM
    if spare < CHECKED_FROM and len(data[: 2 * spare + 2].translate(None, b"[]{}")) > spare:
        return False  # (four deleted bytes: translate's table is quick to make)
    # The brackets ({} as []) and the quotes, in one C pass: with no more opening brackets
    # than the limit (strings' included), not too deep.
    marks = data.translate(_SQUARE, _NOT_MARKS)
    if marks.count(b"[") <= MAX_JSON_DEPTH:
        return False
    # Many brackets (an order book's levels). Without a backslash a quote only delimits a
    # string, and each string's marks are "" unless it holds a bracket: once those pairs are
    # gone, no quote is left unless one did (then the strings are cut out at the quotes).
    # Then the innermost pairs are removed a level at a time, in C: a wide, shallow payload
    # empties in a few rounds, and only what is left is counted level by level.
    if b"\\" in data:
        brackets = _STRING.sub(b"", data).translate(_SQUARE, _NOT_BRACKETS)
    else:
        brackets = marks.replace(b'""', b"")
        if b'"' in brackets:
            brackets = b"".join(data.split(b'"')[::2]).translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(_ROUNDS):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    levels = accumulate(map(_STEP.__getitem__, brackets))
    return max(levels, default=0) > MAX_JSON_DEPTH - _ROUNDS


class JSONOrTextDecoder:
    """The seed's decoding: JSON text → parsed value, other text → ``str``, binary → bytes;
    JSON nested deeper than ``MAX_JSON_DEPTH`` → ``str``."""

    __slots__ = ("_decode", "fast_path")

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder().decode
        # For the consumer loop: the msgspec call itself, and the errors after which
        # decode_text() gives the answer (one Python call less per message), for payloads
        # shorter than fast_path_below or that too_deep() passes (decode_text() otherwise).
        self.fast_path = (self._decode, (msgspec.DecodeError, RecursionError))

    @property
    def fast_path_below(self) -> int:
        """See :func:`check_from`."""
        return check_from()

    def decode_text(self, data: bytes) -> Any:
        if len(data) >= CHECKED_FROM and too_deep(data):
            return _text(data)
        try:
            return self._decode(data)
        except msgspec.DecodeError:  # not JSON
            return _text(data)
        except RecursionError:  # within the limit (checked above, or too short to pass it)
            try:
                return _parse_within_limit(self._decode, data)
            except (msgspec.DecodeError, RecursionError):
                return _text(data)

    def decode_binary(self, data: bytes) -> Any:
        return data


class RawDecoder:
    """Text as received (``str``), binary as ``bytes``; nothing is parsed."""

    __slots__ = ()

    def decode_text(self, data: bytes) -> Any:
        return _text(data)

    def decode_binary(self, data: bytes) -> Any:
        return data


class TypedDecoder:
    """Text decoded by msgspec straight into ``type``; a mismatch is delivered as ``str``."""

    __slots__ = ("_decode", "fast_path", "type")

    def __init__(self, type: Any) -> None:
        decoder = type if isinstance(type, msgspec.json.Decoder) else msgspec.json.Decoder(type)
        self.type = decoder.type
        self._decode = decoder.decode
        # As JSONOrTextDecoder's: the consumer loop calls msgspec itself, and decode_text()
        # only for a frame that raised one of these (it logs and gives the text).
        self.fast_path = (self._decode, (msgspec.DecodeError, RecursionError))

    @property
    def fast_path_below(self) -> int:
        """See :func:`check_from`."""
        return check_from()

    def decode_text(self, data: bytes) -> Any:
        if len(data) >= CHECKED_FROM and too_deep(data):
            logger.debug("frame nests deeper than %d levels; delivered as text", MAX_JSON_DEPTH)
            return _text(data)
        try:
            try:
                return self._decode(data)
            except RecursionError:  # within the limit: see JSONOrTextDecoder.decode_text
                return _parse_within_limit(self._decode, data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            logger.debug("frame does not match %r (%s); delivered as text", self.type, exc)
            return _text(data)

    def decode_binary(self, data: bytes) -> Any:
        return data


DecoderSpec: TypeAlias = "str | MessageDecoder | msgspec.json.Decoder[Any] | type | Any | None"


_D = TypeVar("_D", "JSONOrTextDecoder", "RawDecoder")
_SHARED: dict[type[Any], Any] = {}


def _shared(kind: type[_D]) -> _D:
    """The one instance of a stateless decoder class: the connections that take the default
    share it rather than hold one each (a few hundred bytes per idle connection)."""
    decoder = _SHARED.get(kind)
    if decoder is None:
        decoder = _SHARED[kind] = kind()
    return decoder


def make_decoder(spec: DecoderSpec) -> MessageDecoder:
    """Resolve a ``decoder=`` argument: ``None``/``"json"``, ``"raw"``, a decoder object
    (anything with ``decode_text``/``decode_binary``), a ``msgspec.json.Decoder`` or a type."""
    if spec is None or spec == "json":
        return _shared(JSONOrTextDecoder)
    if spec == "raw":
        return _shared(RawDecoder)
    if isinstance(spec, str):
        raise ConfigurationError(
            f"unknown decoder {spec!r}: use 'json', 'raw', a type or a decoder"
        )
    if hasattr(spec, "decode_text") and hasattr(spec, "decode_binary"):
        decoder: MessageDecoder = spec
        return decoder
    return TypedDecoder(spec)
