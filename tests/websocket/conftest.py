"""Fixtures of the WebSocket tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from networkpype.wire.connection import WebSocketConnection


@pytest.fixture(params=["hook", "fast", "fallback"])
def fast(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Runs a test on each of the reader's paths, for connections made meanwhile: the hook
    on aiohttp's parser ("hook", the default), aiohttp's parsed frames taken in batches
    without it ("fast") and its public ``receive()`` only ("fallback"). The value is
    whether the fast path is allowed (both "hook" and "fast")."""
    before = WebSocketConnection.fast_path_allowed, WebSocketConnection.hook_allowed
    WebSocketConnection.fast_path_allowed = request.param != "fallback"
    WebSocketConnection.hook_allowed = request.param == "hook"
    yield request.param != "fallback"
    WebSocketConnection.fast_path_allowed, WebSocketConnection.hook_allowed = before


@pytest.fixture
def hooked(fast: bool) -> bool:
    """Whether connections made meanwhile take the hook on aiohttp's parser."""
    return WebSocketConnection.hook_allowed and fast
