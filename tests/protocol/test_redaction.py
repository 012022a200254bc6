"""redact_url: the display form of a URL, with no event loop and no sockets."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from networkpype.protocol.redaction import MASK, UNPARSEABLE_URL, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://stream.example.com:9443/ws", "wss://stream.example.com:9443/ws"),
        ("wss://h/ws?listenKey=abc&x=1", "wss://h/ws?listenKey=***&x=***"),
        ("wss://user:pw@h/ws", "wss://***@h/ws"),
        ("wss://token@h/ws", "wss://***@h/ws"),
        ("wss://:pw@h/ws", "wss://***@h/ws"),
        ("ws://u:p@ss@h:1/x?a=1;b=2#frag", "ws://***@h:1/x?a=***;b=***"),
        ("ws://h/ws#access_token=abc", "ws://h/ws"),
        ("ws://h/ws?abc123", "ws://h/ws?***"),  # a bare item may be the token itself
        ("ws://h/ws?=v&&k=", "ws://h/ws?=***&&k=***"),
        ("ws://[::1]:80/ws?k=v", "ws://[::1]:80/ws?k=***"),
        ("/api/v3/order?signature=abc", "/api/v3/order?signature=***"),
        ("user:pw@host/ws?k=v", "user:***@host/ws?k=***"),  # no "//": still no password
        ("", ""),
    ],
)
def test_query_values_user_info_and_fragment_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


_LISTEN_KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"[:60]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Binance's user-data stream: the listenKey is the path's last segment.
        (f"wss://stream.binance.com:9443/ws/{_LISTEN_KEY}", "wss://stream.binance.com:9443/ws/***"),
        (f"wss://h/ws/{_LISTEN_KEY}/x?k=v", "wss://h/ws/***/x?k=***"),
        ("wss://h/v1/" + "0123456789abcdef" * 2, "wss://h/v1/***"),  # hex
        ("wss://h/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjEyM30.c2lnbmF0dXJlMTIz", "wss://h/t/***"),
    ],
)
def test_a_path_segment_that_looks_like_a_token_is_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "wss://h/ws/btcusdt@depth@100ms",
        "wss://h/stream/btcusdt@trade/ethusdt@trade",
        "wss://h/api/v3/ws/12345",
        "wss://h/marketdata/publicstreamsforeverybody",  # long, but no digit
    ],
)
def test_stream_names_versions_and_short_ids_are_shown_as_they_are(url: str) -> None:
    assert redact_url(url) == url


@pytest.mark.parametrize("garbage", ["ws://[::1/x?k=secret", None, b"ws://h/?k=secret", 12])
def test_garbage_gives_the_placeholder_and_never_raises(garbage: Any) -> None:
    assert redact_url(garbage) == UNPARSEABLE_URL


def test_mask_and_placeholder_carry_no_url_characters_a_parser_would_split() -> None:
    assert "&" not in MASK and "@" not in MASK and "/" not in MASK
    assert redact_url(redact_url("wss://u:p@h/?k=v")) == "wss://***@h/?k=***"


def test_module_imports_no_io_library() -> None:
    code = (
        "import sys, networkpype.protocol.redaction;"
        "print(','.join(m for m in ('asyncio', 'aiohttp', 'pykka') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
