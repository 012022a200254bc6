"""Fixtures of the WebSocket tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from networkpype.wire.connection import WebSocketConnection


@pytest.fixture(params=[True, False], ids=["fast", "fallback"])
def fast(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Runs a test on both of the reader's paths: aiohttp's parsed frames taken in batches
    (True) and its public ``receive()`` only (False), for connections made meanwhile."""
    before = WebSocketConnection.fast_path_allowed
    WebSocketConnection.fast_path_allowed = request.param
    yield request.param
    WebSocketConnection.fast_path_allowed = before
