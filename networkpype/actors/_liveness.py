"""The liveness watch of one connection actor, on event-loop timers.

A healthy, idle connection costs one timer handle here, not a task: the watch wakes when the
next ping or data deadline is due, and only the ping itself (a send, which must be awaited)
runs in a short task owned by the watch. Part of :mod:`networkpype.actors.connection`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from networkpype.protocol.errors import LivenessTimeoutError
from networkpype.protocol.messages import ConnectionSpec
from networkpype.protocol.redaction import redact_url
from networkpype.wire.connection import WebSocketConnection

__all__ = ["Liveness", "Watched"]

MIN_RECHECK = 0.01
"""Seconds: the shortest timer the watch sets (a deadline just passed is rechecked soon)."""

BLOCKED_RECHECK = 0.25
"""While the reader waits for a slow consumer, the watch looks again after this fraction of
its shortest period (``ping_interval`` or ``no_data_timeout``)."""


class Watched(Protocol):
    """The owner of a watch (the connection actor)."""

    reader_blocked: bool  # the reader waits for room in the consumer's queue

    def liveness_failed(self, error: Exception) -> None: ...


class Liveness:
    """Judges one open connection by ``spec``: a ping when no frame arrived for
    ``ping_interval``, dead when nothing at all arrives within ``pong_timeout`` after it;
    dead after ``no_data_timeout`` without data. While ``owner.reader_blocked`` (the reader
    waits for a slow consumer) the link is not judged: frames are then unread, not absent.

    ``owner.liveness_failed(error)`` is called once, with a ``LivenessTimeoutError`` or the
    ``ConnectionError`` of a failed ping. ``stop()`` cancels the timer and the ping task.
    """

    __slots__ = ("_conn", "_handle", "_opened", "_owner", "_ping", "_spec")

    def __init__(
        self, spec: ConnectionSpec, connection: WebSocketConnection, owner: Watched
    ) -> None:
        self._spec = spec
        self._conn = connection
        self._owner = owner
        self._opened = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None
        self._ping: asyncio.Task[None] | None = None
        self._check()

    def stop(self) -> asyncio.Task[None] | None:
        """Stop watching; returns the ping task in flight (cancelled), for the caller to
        await."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
        ping, self._ping = self._ping, None
        if ping is not None and not ping.done():
            ping.cancel()
            return ping
        return None

    def _later(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(max(delay, MIN_RECHECK), self._check)

    def _check(self) -> None:
        self._handle = None
        spec, conn = self._spec, self._conn
        interval, no_data = spec.ping_interval, spec.no_data_timeout
        now = time.monotonic()
        blocked = self._owner.reader_blocked
        # This connection's frames only: a redial reuses the socket holder, whose stamps
        # still tell of the connection before (a stall then would condemn every redial).
        last_data = max(conn.last_data_monotonic, self._opened)
        if no_data is not None and not blocked and now - last_data >= no_data:
            self._dead(
                LivenessTimeoutError(
                    f"{redact_url(spec.url)}: no data for {now - last_data:.1f} s "
                    f"(no_data_timeout={no_data})"
                )
            )
            return
        due = [] if interval is None else [max(conn.last_frame_monotonic, self._opened) + interval]
        if no_data is not None:
            due.append(last_data + no_data)
        if not due:
            return  # nothing to watch
        wake = min(due)
        if blocked:
            # Frames are unread, not absent: judge again later. Not at once: a slow consumer
            # must not set every shard's watch polling (100 shards at 100 Hz each).
            period = min(x for x in (interval, no_data) if x is not None)
            self._later(max(wake - now, period * BLOCKED_RECHECK))
            return
        if now < wake or interval is None:
            self._later(wake - now)
            return
        self._ping = asyncio.get_running_loop().create_task(
            self._ping_and_wait(), name=f"networkpype-ping-{redact_url(spec.url)}"
        )

    async def _ping_and_wait(self) -> None:
        sent = time.monotonic()
        try:
            await self._conn.ping()
        except Exception as exc:  # a link we cannot ping is replaced
            self._ping = None
            self._dead(exc)
            return
        await asyncio.sleep(self._spec.pong_timeout)
        self._ping = None
        if self._conn.last_frame_monotonic < sent and not self._owner.reader_blocked:
            self._dead(
                LivenessTimeoutError(
                    f"{redact_url(self._spec.url)}: no pong within "
                    f"pong_timeout={self._spec.pong_timeout} s "
                    "of a ping (half-open connection)"
                )
            )
            return
        self._check()

    def _dead(self, error: Exception) -> None:
        self.stop()
        self._owner.liveness_failed(error)
