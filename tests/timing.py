"""The tests' one time unit, and bounded waits for a condition.

A test that waits for something to happen waits for it (an event, or :func:`wait_until` on
the condition), bounded by :data:`WAIT`. A deliberate gap ("idle longer than the ping
interval", "events arrive while nobody reads") is a multiple of :data:`MS`. Both scale with
``NETWORKPYPE_TEST_TIME_SCALE`` (default 1), as python-websockets' tests scale theirs, so a
slow or loaded machine stretches every gap and bound at once::

    NETWORKPYPE_TEST_TIME_SCALE=3 python -m pytest
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Callable

_SETTING = os.environ.get("NETWORKPYPE_TEST_TIME_SCALE", "1")
try:
    SCALE = float(_SETTING)
except ValueError:
    SCALE = float("nan")
if not 1 <= SCALE < float("inf"):  # shorter gaps would undercut the servers' fixed windows
    raise ValueError(f"NETWORKPYPE_TEST_TIME_SCALE must be a number >= 1, not {_SETTING!r}")

MS = 0.001 * SCALE
"""One millisecond, scaled: every deliberate gap in the tests is a multiple of it."""

WAIT = 10_000 * MS
"""The bound on waiting for something that should happen at once (far above its usual
milliseconds, far below pytest-timeout's 120 s)."""


async def wait_until(
    condition: Callable[[], object], what: str = "", timeout: float = WAIT
) -> None:
    """Return once ``condition()`` (or what it returns, when awaitable) is true, checked
    every millisecond; fail after ``timeout`` seconds with ``what`` in the message."""
    deadline = time.monotonic() + timeout
    while not await _value(condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.1f} s: {what or condition}")
        await asyncio.sleep(MS)


async def _value(result: object) -> object:
    return await result if inspect.isawaitable(result) else result


def wait_until_sync(condition: Callable[[], object], what: str = "", timeout: float = WAIT) -> None:
    """:func:`wait_until` for a thread without an event loop (it blocks the thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.1f} s: {what or condition}")
        time.sleep(MS)
