"""``SyncStream``: blocking reads of one message stream, and the guard against blocking a loop.

Part of the blocking facades; import the public names from :mod:`networkpype.embedding`.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from typing import Any

from networkpype._embedding._handoff import _HandOff
from networkpype.protocol.errors import BlockingCallError

__all__ = ["SyncStream"]


def _refuse_on_a_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise BlockingCallError(
        f"{what}() blocks, and this thread runs an event loop (the networkpype loop thread, "
        "an on_escalate callback or an actor handler?): blocking here would stall that loop, "
        "or deadlock it; call it from another thread, or use the async WebSocketManager API"
    )


class SyncStream:
    """Blocking reads of one message stream, from any number of threads.

    Each message goes to exactly one reader, and so does each error of the stream: it is
    raised once, in its place, and the next read goes on with what follows. ``None`` marks
    the end of the stream (after ``stop()``, after ``GaveUpError``, or an unsubscribed
    topic's stream): every later read returns None at once.
    """

    def __init__(self, handoff: _HandOff) -> None:
        self._handoff = handoff

    def get(self, timeout: float | None = None) -> Any:
        """The next message (a ``WebSocketResponse``, or an event when asked for), or None
        once the stream has ended and been drained.

        Waits up to ``timeout`` seconds (``None``: until a message arrives or the stream
        ends; ``0``: poll, allowed on any thread). Raises, once and in its place, an error of
        the stream: what a post-processor raised on a message (that message is skipped; the
        next read gives the one after it), ``ConsumerOverflowError`` (``overflow="error"``;
        reading goes on past the gap), ``GaveUpError`` once the supervisor gave up and
        everything before was read (the stream then ends: None). Raises ``TimeoutError`` when
        ``timeout`` passes, ``BlockingCallError`` when a blocking wait is asked on a thread
        running an event loop.
        """
        if timeout is None or timeout > 0:
            _refuse_on_a_loop("get")
        return self._handoff.get(timeout)

    def get_nowait(self) -> Any:
        """The next message if one is waiting, None if the stream has ended. Raises
        ``queue.Empty`` when nothing is waiting, and what ``get()`` raises. Never blocks;
        allowed on any thread."""
        try:
            return self._handoff.get(0)
        except TimeoutError:
            raise queue.Empty from None

    def messages(self, timeout: float | None = None) -> Iterator[Any]:
        """Iterate until the stream ends; ``timeout`` (seconds) bounds the wait for each
        message (``TimeoutError``). Raises what ``get()`` raises; call it again to go on
        after an error."""
        while True:
            item = self.get(timeout)
            if item is None:
                return
            yield item

    def __iter__(self) -> Iterator[Any]:
        return self.messages()

    @property
    def pending(self) -> int:
        """Messages waiting to be read."""
        return len(self._handoff)

    @property
    def delivered(self) -> int:
        """Messages (and events) read so far."""
        return self._handoff.delivered
