"""The decoders at their earlier import path; they live in :mod:`networkpype.wire.decoding`."""

from networkpype.wire.decoding import (
    DecoderSpec,
    JSONOrTextDecoder,
    MessageDecoder,
    RawDecoder,
    TypedDecoder,
    make_decoder,
)

__all__ = [
    "DecoderSpec",
    "JSONOrTextDecoder",
    "MessageDecoder",
    "RawDecoder",
    "TypedDecoder",
    "make_decoder",
]
