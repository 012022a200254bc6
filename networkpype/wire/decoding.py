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

Frames reach decoders as the raw ``bytes`` of a text frame, which spares a ``str`` copy for
JSON. They are valid UTF-8: the connection checked them, and failed the connection with 1007
on a frame that is not (RFC 6455 §8.1), whatever the decoder.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, TypeAlias, TypeVar

import msgspec

from networkpype.protocol.errors import ConfigurationError

__all__ = [
    "DecoderSpec",
    "JSONOrTextDecoder",
    "MessageDecoder",
    "RawDecoder",
    "TypedDecoder",
    "make_decoder",
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


class JSONOrTextDecoder:
    """The seed's decoding: JSON text → parsed value, other text → ``str``, binary → bytes."""

    __slots__ = ("_decode", "fast_path")

    def __init__(self) -> None:
        self._decode = msgspec.json.Decoder().decode
        # For the consumer loop: the msgspec call itself, and the errors after which
        # decode_text() gives the answer (one Python call less per message).
        self.fast_path = (self._decode, (msgspec.DecodeError, RecursionError))

    def decode_text(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except (msgspec.DecodeError, RecursionError):  # not JSON, or nested too deep to parse
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

    def decode_text(self, data: bytes) -> Any:
        try:
            return self._decode(data)
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
