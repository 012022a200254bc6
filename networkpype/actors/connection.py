"""The connection actor: owns one WebSocket, the reader task that drains it and the
liveness timers that watch it.

Commands (``OpenSocket``, ``SendFrame``, ``SendPing``, ``CloseSocket``) arrive through the
actor's inbox. The opening handshake runs in a task the actor owns (``OpenSocket`` replies at
once with a future of its outcome), so the inbox is free meanwhile and a stop is handled at
once: it cancels the handshake, which closes the socket being opened. Data frames do not
go through the inbox: the reader decodes each frame and puts the response
straight into the consumer's :class:`~networkpype.actors.delivery.DeliveryQueue`, so a frame
costs no mailbox hop. Lifecycle events go into the same queue, so the consumer sees them in
order with the data: ``Connected``/``Reconnected`` before the first frame of a connection,
``Disconnected`` after its last. Then the failure is reported to the parent (``SocketFailed``),
which decides whether to restart.

Liveness (``ConnectionSpec``): a ping when no frame arrived for ``ping_interval``, the link
declared dead when nothing at all arrives within ``pong_timeout`` after it; optionally dead
after ``no_data_timeout`` without data, and application pings on a schedule. While the
reader waits for a slow consumer, the link is not judged: frames are then unread, not absent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pykka import ActorRef

from networkpype.actors._liveness import Liveness
from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import (
    AlreadyConnectedError,
    ConnectAbortedError,
    ConnectionClosedError,
    NotConnectedError,
)
from networkpype.protocol.events import Connected, Disconnected, Reconnected
from networkpype.protocol.messages import (
    AbortSocket,
    CloseSocket,
    ConnectionSpec,
    OpenSocket,
    ReplayDone,
    SendFrame,
    SendPing,
    SendRequest,
    SocketFailed,
    SocketOpened,
    StartReading,
)
from networkpype.protocol.redaction import redact_url
from networkpype.runtime import AsyncioActor, tell_quietly
from networkpype.wire.connection import BinaryFrame, WebSocketConnection

__all__ = ["ConnectionActor"]

logger = logging.getLogger(__name__)

STOP_CLOSE_TIMEOUT = 0.05
"""Seconds the actor waits for the server's reply to its close frame when it stops."""


class ConnectionActor(AsyncioActor):
    """One WebSocket: opens it, sends on it, reads it into ``sink``, reports to ``parent``.

    ``connection`` is the :class:`WebSocketConnection` the actor drives (its ``connected`` and
    ``last_recv_time`` may be read from the same loop by the facade). The actor owns its
    opening handshake, reader task and liveness watch: ``CloseSocket`` and ``on_stop`` cancel
    and await them.
    ``emit_events`` puts lifecycle events into ``sink`` (consumers skip them unless asked).
    ``intercept(frame)`` sees each text frame first and returns True to take it out of the
    stream (used to match subscription acknowledgements).
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        sink: DeliveryQueue[Any],
        parent: ActorRef[Any] | None,
        connection_id: str,
        *,
        emit_events: bool = True,
        generation: int = 0,
        intercept: Callable[[bytes], bool] | None = None,
        intercept_prefixes: tuple[bytes, ...] | None = None,
    ) -> None:
        super().__init__()
        self.connection = connection
        self.connection_id = connection_id
        self._sink = sink
        self._parent = parent
        self._emit_events = emit_events
        self.generation = generation
        self._intercept = intercept
        self._intercept_prefixes = intercept_prefixes
        self._tasks: list[asyncio.Task[None]] = []
        self._reading = False  # from _start_reading to _close: the reader runs or is parked
        self._opening: asyncio.Task[None] | None = None
        self._liveness: Liveness | None = None
        self.reader_blocked = False
        self._opened: tuple[ConnectionSpec, float | None, int] | None = None
        self._failed = False
        # When the subscriptions were replayed (or went out live): data after it proves the
        # connection healthy, and its failure then restarts at once (see SocketFailed).
        self._replayed_at: float | None = None

    def __str__(self) -> str:
        shown = redact_url(self.connection.url) if self.connection.url else "unopened"
        return f"ConnectionActor {self.connection_id} ({shown})"

    async def on_receive(self, message: Any) -> Any:
        match message:
            case SendFrame(frame=frame):
                await self.connection.send_frame(frame)
            case SendRequest(request=request):
                await request.send_with_connection(self.connection)
            case SendPing():
                await self.connection.ping()
            case OpenSocket(
                spec=spec, down_since=down_since, attempts=attempts, start_reading=start
            ):
                return self._start_opening(spec, down_since, attempts, start)
            case StartReading():
                self._start_reading()
            case ReplayDone():
                self._replayed_at = time.monotonic()
            case AbortSocket(error=error):
                self._fail(error)  # first: the parent starts recovery at once
                await self._close()
            case CloseSocket():
                await self._close()
            case _:
                return super().on_receive(message)
        return None

    async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
        await self._close()

    async def on_failure(self, *_exc_info: Any) -> None:  # type: ignore[override]
        await self._close()

    # -- lifecycle -------------------------------------------------------------------------

    def _start_opening(
        self, spec: ConnectionSpec, down_since: float | None, attempts: int, start_reading: bool
    ) -> asyncio.Future[None]:
        """Open in a task the actor owns; the returned future gets the outcome: None once
        open, the handshake's error, or ``ConnectAbortedError`` when the actor closed first.
        An asker that cancels the future cancels the opening."""
        if self._opening is not None:
            raise AlreadyConnectedError(f"{self}: already opening")
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(
            self._open(spec, down_since, attempts, start_reading),
            name=f"networkpype-open-{self.connection_id}",
        )
        self._opening = task

        def settle(task: asyncio.Task[None]) -> None:
            if self._opening is task:
                self._opening = None
            error = None if task.cancelled() else task.exception()
            if opened.done():
                return
            if task.cancelled():
                opened.set_exception(ConnectAbortedError(f"{self}: closed while opening"))
                # Its asker may be gone too (cancelled between the reply and its await, as
                # in a shutdown): the stop is the news, not an error nobody retrieved.
                opened.exception()
            elif error is not None:
                opened.set_exception(error)
            else:
                opened.set_result(None)

        def abandoned(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                task.cancel()  # the asker stopped waiting: stop opening

        task.add_done_callback(settle)
        opened.add_done_callback(abandoned)
        return opened

    async def _open(
        self, spec: ConnectionSpec, down_since: float | None, attempts: int, start_reading: bool
    ) -> None:
        await self.connection.connect(
            spec.url,
            ping_timeout=0,  # liveness is ours (separate interval and timeout), not aiohttp's
            # Pings are answered here (the seed's behaviour) rather than by aiohttp, whose
            # auto_ping would also hide the pongs that liveness counts as signs of life.
            auto_ping=False,
            message_timeout=spec.message_timeout,
            ws_headers=spec.headers,
            verify_ssl=spec.verify_ssl,
            compress=spec.compress,
        )
        self._opened = (spec, down_since, attempts)
        if self._parent is not None:
            tell_quietly(
                self._parent,
                SocketOpened(
                    connection_id=self.connection_id, url=spec.url, generation=self.generation
                ),
            )
        if start_reading:
            self._start_reading()

    def _start_reading(self) -> None:
        """Announce the connection to the consumer, then start reading and watching it.

        A manager opens with ``start_reading=False`` and sends ``StartReading`` once it has
        switched to this connection, so a consumer that sees ``Reconnected`` can send at once.
        """
        if self._opened is None or self._reading:
            return  # not open, or already reading
        self._reading = True
        spec, down_since, attempts = self._opened
        if self._emit_events:
            # Before the reader starts: the event precedes every frame of this connection.
            if down_since is None:
                event: Any = Connected(
                    connection_id=self.connection_id, at=time.time(), url=redact_url(spec.url)
                )
            else:
                event = Reconnected(
                    connection_id=self.connection_id,
                    at=time.time(),
                    url=redact_url(spec.url),
                    downtime=time.monotonic() - down_since,
                    attempts=attempts,
                )
            self._sink.put_nowait(event)
        self._wake_reader()
        loop = asyncio.get_running_loop()
        if spec.ping_interval or spec.no_data_timeout:
            # Timers, not a task: an idle healthy connection costs a timer handle here.
            self._liveness = Liveness(spec, self.connection, self)
        if spec.app_ping_interval:
            self._tasks.append(
                loop.create_task(
                    self._app_pings(spec), name=f"networkpype-appping-{self.connection_id}"
                )
            )

    async def _close(self) -> None:
        self._reading = False  # a parked reader is not woken again
        liveness, self._liveness = self._liveness, None
        ping = liveness.stop() if liveness is not None else None
        tasks, self._tasks = self._tasks, []
        opening, self._opening = self._opening, None
        if opening is not None:
            # A cancelled handshake leaves no socket open (aiohttp closes it on the way out).
            tasks.append(opening)
        if ping is not None:
            tasks.append(ping)
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is current:
                continue
            try:
                await task
            except asyncio.CancelledError:
                # Re-raise only when *we* are being cancelled, not the task we cancelled.
                if current is not None and current.cancelling():
                    raise
            except Exception:  # only an opening that failed before it was cancelled raises here
                pass  # its asker has the error, through the OpenSocket reply
        # Shutdown is prompt from any state: a server that does not answer our close frame
        # at once (stalled, half-open) is not waited for.
        await self.connection.disconnect(close_timeout=STOP_CLOSE_TIMEOUT)

    def _fail(self, exc: BaseException) -> None:
        """The connection is lost: tell the consumer (in order) and the parent, once."""
        if self._failed:
            return
        self._failed = True
        self.connection.last_error = f"{type(exc).__name__}: {exc}"
        logger.info("%s: connection lost: %s", self, exc)
        if self._emit_events:
            self._sink.put_nowait(
                Disconnected(
                    connection_id=self.connection_id,
                    at=time.time(),
                    cause=str(exc),
                    error=type(exc).__name__,
                    code=int(exc.code)
                    if isinstance(exc, ConnectionClosedError) and exc.code is not None
                    else None,
                )
            )
        if self._parent is not None:
            tell_quietly(
                self._parent,
                SocketFailed(
                    connection_id=self.connection_id,
                    error=exc,
                    generation=self.generation,
                    served=self._served(),
                ),
            )
        else:
            self._sink.fail(exc)

    def _served(self) -> bool:
        """Data arrived after the subscriptions were replayed: the venue serves us."""
        replayed = self._replayed_at
        return replayed is not None and self.connection.last_data_monotonic > replayed

    # -- tasks -----------------------------------------------------------------------------

    async def _put(self, frame: bytes | BinaryFrame) -> None:
        """The reader's wait for room in a full queue: the link is not judged meanwhile."""
        self.reader_blocked = True
        try:
            await self._sink.put(frame)
        finally:
            self.reader_blocked = False

    def _wake_reader(self) -> None:
        """Start the reader task: at the start of reading, and each time a parked reader is
        needed again (``pump``'s ``wake``)."""
        if self._reading:
            self._tasks.append(
                asyncio.get_running_loop().create_task(
                    self._read_loop(), name=f"networkpype-reader-{self.connection_id}"
                )
            )

    async def _read_loop(self) -> None:
        try:
            # The connection stays open after a message timeout: the consumer decides.
            # Replies to our own requests (subscription acknowledgements) are taken out
            # before the queue, so they are matched even while the consumer is not reading.
            parked = await self.connection.pump(
                self._sink.offer,
                self._put,
                self._timed_out,
                self._intercept,
                self._intercept_prefixes or (),
                self._sink.offer_many,
                self._sink.when_room,
                self._wake_reader,
            )
            current = asyncio.current_task()
            if parked and current in self._tasks:
                # Idle: the hook hands data frames over without this task, and wakes a
                # new one for anything else (an idle connection holds no task).
                self._tasks.remove(current)
        except NotConnectedError:
            return  # closed by us between two frames
        except Exception as exc:
            await self.connection.disconnect()
            self._fail(exc)

    def _timed_out(self, error: BaseException) -> None:
        # One pending MessageTimeoutError is enough: while nobody reads, repeated timeouts
        # would otherwise pile up in the queue without bound.
        self._sink.fail(error, coalesce=True)

    def liveness_failed(self, exc: Exception) -> None:
        """Liveness judged the link dead (or its ping failed)."""
        if self._failed:
            return
        self._fail(exc)  # first: the parent starts recovery at once
        # Closing ends the reader quietly; a task of ours, awaited by _close.
        self._tasks.append(
            asyncio.get_running_loop().create_task(
                self.connection.disconnect(), name=f"networkpype-drop-{self.connection_id}"
            )
        )

    async def _app_pings(self, spec: ConnectionSpec) -> None:
        assert spec.app_ping_interval is not None
        try:
            while True:
                await asyncio.sleep(spec.app_ping_interval)
                await self.connection.send_frame(spec.app_ping_payload)
        except ConnectionError:
            return  # the reader reports the failure
