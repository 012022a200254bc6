"""Decoders: pure, no socket. The consumer loop's ``fast_path`` must give what
``decode_text`` gives, a mismatch included; JSON nested deeper than ``MAX_JSON_DEPTH`` is
text, whatever the interpreter's own limit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from networkpype.wire.decoding import (
    CHECKED_FROM,
    MAX_JSON_DEPTH,
    JSONOrTextDecoder,
    TypedDecoder,
    check_from,
    too_deep,
)


class Trade(msgspec.Struct, frozen=True):
    p: str
    q: str


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def same(a: Any, b: Any) -> bool:
    """``a == b`` without recursion (a thousand nested lists exceed Python's own limit)."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


FRAMES = [
    b'{"p":"1.5","q":"2"}',
    b'{"p":1}',
    b"not json",
    nested(MAX_JSON_DEPTH),
    nested(MAX_JSON_DEPTH + 1),
    nested(2000),
]


@pytest.mark.parametrize("decoder", [TypedDecoder(Trade), JSONOrTextDecoder()])
def test_fast_path_then_decode_text_gives_what_decode_text_gives(decoder: object) -> None:
    fast, errors = decoder.fast_path  # type: ignore[attr-defined]
    below = decoder.fast_path_below  # type: ignore[attr-defined]
    for frame in FRAMES:
        if len(frame) >= below and too_deep(frame):
            continue  # decode_text decides: the loop calls it
        try:
            value = fast(frame)
        except errors:
            value = decoder.decode_text(frame)  # type: ignore[attr-defined]
        assert same(value, decoder.decode_text(frame))  # type: ignore[attr-defined]


def test_typed_decoder_offers_a_fast_path_of_its_own_msgspec_call() -> None:
    decoder = TypedDecoder(Trade)
    fast, errors = decoder.fast_path
    assert fast(FRAMES[0]) == Trade(p="1.5", q="2")
    assert issubclass(msgspec.ValidationError, errors)


def test_nesting_up_to_the_limit_is_parsed_and_deeper_is_text() -> None:
    decoder = JSONOrTextDecoder()
    value = decoder.decode_text(nested(MAX_JSON_DEPTH))
    for _ in range(MAX_JSON_DEPTH - 1):
        assert isinstance(value, list)
        assert len(value) == 1
        value = value[0]
    assert value == []
    for depth in (MAX_JSON_DEPTH + 1, 2000, 20_000):  # msgspec parses 2,000 on 3.13, not 3.11
        assert decoder.decode_text(nested(depth)) == nested(depth).decode()
    deep_object = b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1)
    assert decoder.decode_text(deep_object) == deep_object.decode()
    assert TypedDecoder(dict[str, object]).decode_text(deep_object) == deep_object.decode()


def test_the_depth_check_counts_levels_not_brackets() -> None:
    assert len(nested(MAX_JSON_DEPTH + 1)) == CHECKED_FROM  # shorter cannot be too deep
    wide = b"[" + b",".join([b"[1]"] * 3000) + b"]"  # 3,001 arrays, 2 levels
    assert not too_deep(wide)
    in_a_string = b'["' + b"[" * 3000 + b'"]'
    assert not too_deep(in_a_string)
    escaped_quote = b'["\\"' + b"[" * 1200 + b'"]'  # an escaped quote: the [ are in the string
    assert not too_deep(escaped_quote)
    assert too_deep(b'["\\"",' + nested(MAX_JSON_DEPTH + 1)[1:] + b"]")  # after the string


def in_a_wide_list(items: bytes, inner: bytes) -> bytes:
    """A list of ``items`` and then ``inner``: one level more than ``inner``."""
    return b"[" + items + b"," + inner + b"]"


@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "with-escapes"])
def test_payloads_with_many_brackets_are_walked_exactly(escaped: bool) -> None:
    key = b'"a\\"b"' if escaped else b'"ab"'  # with a backslash the strings are cut out
    book = b"{" + key + b":[" + b",".join([b'["1.5","2"]'] * 2000) + b"]}"
    assert not too_deep(book)  # 2,001 arrays, 3 levels
    strings = b",".join([key, b'"[[[["', b'"]"'] + [b'"{"'] * 1200)
    levels = b",".join([b"[1]"] * 1200)
    for items in (strings, levels):  # brackets in strings count for nothing
        assert not too_deep(in_a_wide_list(items, nested(MAX_JSON_DEPTH - 1)))
        assert too_deep(in_a_wide_list(items, nested(MAX_JSON_DEPTH)))


def at_stack_depth(frames: int, call: Callable[[], Any]) -> Any:
    """``call()`` from ``frames`` Python frames deeper than here."""
    return call() if frames == 0 else at_stack_depth(frames - 1, call)


@pytest.mark.parametrize("decoder", [JSONOrTextDecoder(), TypedDecoder(list[Any])])
def test_the_limit_holds_whatever_the_callers_stack(decoder: Any) -> None:
    # On 3.11 msgspec's nesting counts against the recursion limit, less the stack below it:
    # a frame within MAX_JSON_DEPTH is parsed all the same (the decoder lifts the limit).
    deepest = nested(MAX_JSON_DEPTH)
    value = at_stack_depth(400, lambda: decoder.decode_text(deepest))
    assert isinstance(value, list)
    assert decoder.decode_text(nested(MAX_JSON_DEPTH + 1)) == nested(MAX_JSON_DEPTH + 1).decode()


@pytest.fixture
def recursion_limit() -> Iterator[Callable[[int], None]]:
    before = sys.getrecursionlimit()
    yield sys.setrecursionlimit
    sys.setrecursionlimit(before)


def test_long_payloads_are_checked_only_where_msgspec_could_nest_deeper(
    recursion_limit: Callable[[int], None],
) -> None:
    decoder = JSONOrTextDecoder()
    bounded_by_the_limit = sys.version_info < (3, 12)
    assert check_from() == (sys.maxsize if bounded_by_the_limit else CHECKED_FROM)
    recursion_limit(10 * MAX_JSON_DEPTH)  # msgspec now parses 2,000 levels on 3.11 too
    assert check_from() == CHECKED_FROM == decoder.fast_path_below
    assert decoder.decode_text(nested(2000)) == nested(2000).decode()
