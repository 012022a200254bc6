"""One connection accepted by the exchange simulator: its counters, its writes, its watchdog
(server pings, pong timeout, maximum age) and its close.

Every frame the simulator sends (replies, events, pings, pongs) is built by hand and written
straight to the transport: no ``await``, so a request handler or a feed never waits on a
slow client, and frames keep the order in which they were written. Only the close goes
through aiohttp, which owns the closing handshake. A client that stops reading is aborted
once ``max_send_buffer`` bytes are waiting for it (a slow consumer).

Close codes sent by the simulator (see :mod:`networkpype.demo.exchange`): 1008 (rate limit),
1001 (maximum age, shutdown, lifetime over), 1011 (pong timeout), or any ``close_all(code)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
from typing import Any

import msgspec
from aiohttp import web

from networkpype.demo.frames import OP_PING, OP_PONG, frame
from networkpype.demo.limits import SlidingWindow
from networkpype.demo.statistics import CloseInitiator, ExchangeConnectionStatistics, Violation

__all__ = ["SimulatedConnection"]

logger = logging.getLogger("networkpype.demo.exchange")

_RST_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: closing sends RST, not FIN
_ABNORMAL = 1006  # recorded (never sent) for a connection that ended without a close frame

_encode = msgspec.json.Encoder().encode


class SimulatedConnection:
    """Server-side state of one simulator connection. Owned by its request handler, which
    runs :meth:`watch` as a task and calls :meth:`finish` when the socket is done."""

    def __init__(
        self,
        connection_id: int,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        *,
        incoming: SlidingWindow,
        max_send_buffer: int,
        close_timeout: float,
    ) -> None:
        self.connection_id = connection_id
        self.ws = ws
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self.opened_at = self._loop.time()
        self._closed_at: float | None = None
        self.incoming = incoming
        self._max_send_buffer = max_send_buffer
        self._close_timeout = close_timeout
        self.subscriptions: dict[str, None] = {}  # an ordered set, in subscription order
        self.messages_received = 0
        self.messages_sent = 0
        self.events_sent = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.stalled = False
        self.awaiting_pong_since: float | None = None  # first ping not followed by any pong
        self.violation: Violation | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_by: CloseInitiator | None = None
        self._closer: asyncio.Task[None] | None = None
        self.watchdog: asyncio.Task[None] | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """Neither closed, nor closing, nor aborted."""
        return self.closed_by is None

    @property
    def age(self) -> float:
        """Seconds since the handshake (until the end, once ended)."""
        end = self._loop.time() if self._closed_at is None else self._closed_at
        return end - self.opened_at

    def _writable(self) -> bool:
        return self.closed_by is None and not self.ws.closed and not self._transport.is_closing()

    def _ended(self, by: CloseInitiator, code: int, reason: str) -> None:
        if self.closed_by is None:
            self.closed_by, self.close_code, self.close_reason = by, code, reason
            self._closed_at = self._loop.time()

    # -- sending -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> bool:
        if not self._writable():
            return False
        self._transport.write(data)
        if self._transport.get_write_buffer_size() > self._max_send_buffer:
            logger.info(
                "connection %d: over %d bytes unsent, aborting a slow consumer",
                self.connection_id,
                self._max_send_buffer,
            )
            self.abort("slow consumer")
        return True

    def send_json(self, message: Any) -> None:
        """Send one reply (a text frame), unless stalled or closing."""
        if not self.stalled and self._write(frame(_encode(message))):
            self.messages_sent += 1

    def deliver(self, data: bytes) -> bool:
        """Send one pre-built event frame (a feed calls this); ``False`` if stalled or
        closing."""
        if self.stalled or not self._write(data):
            return False
        self.messages_sent += 1
        self.events_sent += 1
        return True

    def pong(self, payload: bytes) -> None:
        """Answer a client's ping."""
        if not self.stalled:
            self._write(frame(payload[:125], OP_PONG))

    def on_pong(self) -> None:
        """Any pong, solicited or not, answers every outstanding ping (as on Binance)."""
        self.pongs_received += 1
        self.awaiting_pong_since = None

    # -- faults and closing ------------------------------------------------------------------

    def stall(self) -> None:
        """Go silent: send nothing (no replies, events, pings or pongs) and ignore every frame
        received (uncounted), until :meth:`resume`. A close from the client is still
        answered, and the maximum age still applies; the pong timeout is suspended."""
        self.stalled = True

    def resume(self) -> None:
        """End a :meth:`stall`; events produced meanwhile are lost (the sequence jumps)."""
        self.stalled = False
        self.awaiting_pong_since = None

    def abort(self, reason: str) -> None:
        """End the connection at once with a TCP RST: no close frame, unsent data dropped."""
        self._ended("abort", _ABNORMAL, reason)
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
        self._transport.abort()

    def begin_close(self, code: int, reason: str) -> None:
        """Start closing with ``code`` and ``reason`` (a task this connection owns; the first
        close wins). The client gets ``close_timeout`` seconds to answer before an abort."""
        if self._closer is not None or not self.open:
            return
        self._ended("server", code, reason)
        logger.info("connection %d: closing with %d (%s)", self.connection_id, code, reason)
        self._closer = asyncio.create_task(self._close(code, reason))

    async def close(self, code: int, reason: str) -> None:
        """:meth:`begin_close`, then wait until the close is done."""
        self.begin_close(code, reason)
        if self._closer is not None:
            await asyncio.shield(self._closer)

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.ws.close(code=code, message=reason.encode()[:123])
        except TimeoutError:
            logger.debug("connection %d: no close reply, aborting", self.connection_id)
            self._transport.abort()
        except ConnectionError:
            self._transport.abort()

    def client_closed(self, code: int, reason: str) -> None:
        """The client sent a close frame (aiohttp has answered it)."""
        self._ended("client", code, reason)

    def lost(self, reason: str = "connection lost") -> None:
        """The socket ended without a close frame (EOF, reset): recorded as 1006."""
        self._ended("lost", _ABNORMAL, reason)

    async def finish(self) -> None:
        """Wait for a close in progress, then stop the watchdog. Call once, from the
        connection's request handler, after its receive loop has ended."""
        try:
            if self._closer is not None:
                await asyncio.shield(self._closer)
        finally:
            watchdog, self.watchdog = self.watchdog, None
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            if self._closed_at is None:
                self._closed_at = self._loop.time()

    # -- watchdog ------------------------------------------------------------------------------

    async def watch(self, ping_interval: float, pong_timeout: float, max_age: float) -> None:
        """Ping every ``ping_interval`` seconds; close with 1011 when ``pong_timeout`` seconds
        pass after a ping with no pong; close with 1001 at ``max_age`` seconds. Returns once
        it has begun a close or the connection has ended."""
        loop = self._loop
        next_ping = self.opened_at + ping_interval
        age_deadline = self.opened_at + max_age
        while self.open:
            since = self.awaiting_pong_since
            pong_deadline = math.inf if since is None or self.stalled else since + pong_timeout
            await asyncio.sleep(max(0.0, min(next_ping, pong_deadline, age_deadline) - loop.time()))
            now = loop.time()
            if not self.open:
                return
            if now >= age_deadline:
                self.begin_close(1001, "max connection age")
                return
            since = self.awaiting_pong_since
            if since is not None and not self.stalled and now >= since + pong_timeout:
                self.begin_close(1011, "pong timeout")
                return
            if now >= next_ping:
                if not self.stalled and self._write(frame(b"%d" % (self.pings_sent + 1), OP_PING)):
                    self.pings_sent += 1
                    if self.awaiting_pong_since is None:
                        self.awaiting_pong_since = now
                while next_ping <= now:
                    next_ping += ping_interval

    def snapshot(self) -> ExchangeConnectionStatistics:
        """A frozen copy of the counters."""
        return ExchangeConnectionStatistics(
            connection_id=self.connection_id,
            open=self.open,
            age=self.age,
            subscriptions=tuple(self.subscriptions),
            messages_received=self.messages_received,
            messages_sent=self.messages_sent,
            events_sent=self.events_sent,
            pings_sent=self.pings_sent,
            pongs_received=self.pongs_received,
            stalled=self.stalled,
            close_code=self.close_code,
            close_reason=self.close_reason,
            closed_by=self.closed_by,
            violation=self.violation,
        )
