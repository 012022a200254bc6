"""Decoders: pure, no socket. The consumer loop's ``fast_path`` must give what
``decode_text`` gives, a mismatch included."""

from __future__ import annotations

import msgspec
import pytest

from networkpype.wire.decoding import JSONOrTextDecoder, TypedDecoder


class Trade(msgspec.Struct, frozen=True):
    p: str
    q: str


FRAMES = [b'{"p":"1.5","q":"2"}', b'{"p":1}', b"not json", b"[" * 2000 + b"]" * 2000]


@pytest.mark.parametrize("decoder", [TypedDecoder(Trade), JSONOrTextDecoder()])
def test_fast_path_then_decode_text_gives_what_decode_text_gives(decoder: object) -> None:
    fast, errors = decoder.fast_path  # type: ignore[attr-defined]
    for frame in FRAMES:
        try:
            value = fast(frame)
        except errors:
            value = decoder.decode_text(frame)  # type: ignore[attr-defined]
        assert value == decoder.decode_text(frame)  # type: ignore[attr-defined]


def test_typed_decoder_offers_a_fast_path_of_its_own_msgspec_call() -> None:
    decoder = TypedDecoder(Trade)
    fast, errors = decoder.fast_path
    assert fast(FRAMES[0]) == Trade(p="1.5", q="2")
    assert issubclass(msgspec.ValidationError, errors)
