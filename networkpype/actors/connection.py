"""The connection actor: owns one WebSocket and the reader task that drains it.

Commands (``OpenSocket``, ``SendFrame``, ``SendPing``, ``CloseSocket``) arrive through the
actor's inbox. Data frames do not: the reader task decodes each frame and puts the response
straight into the consumer's :class:`~networkpype.actors.delivery.DeliveryQueue`, so a frame
costs no mailbox hop. When the socket breaks, the reader reports ``SocketFailed`` to the
parent (the manager or the supervisor), which decides what the consumer sees.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pykka import ActorRef

from networkpype.actors.delivery import DeliveryQueue
from networkpype.actors.runtime import AsyncioActor
from networkpype.protocol.errors import NotConnectedError
from networkpype.protocol.messages import (
    CloseSocket,
    ConnectionSpec,
    OpenSocket,
    SendFrame,
    SendPing,
    SocketFailed,
    SocketOpened,
)
from networkpype.websocket.connection import WebSocketConnection

__all__ = ["ConnectionActor"]

logger = logging.getLogger(__name__)


class ConnectionActor(AsyncioActor):
    """One WebSocket: opens it, sends on it, reads it into ``sink``, reports to ``parent``.

    ``connection`` is the :class:`WebSocketConnection` the actor drives (its ``connected`` and
    ``last_recv_time`` may be read from the same loop by the facade). The actor owns the
    reader task: it is cancelled and awaited by ``CloseSocket`` and by ``on_stop``.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        sink: DeliveryQueue[Any],
        parent: ActorRef[Any] | None,
        connection_id: str,
    ) -> None:
        super().__init__()
        self.connection = connection
        self.connection_id = connection_id
        self._sink = sink
        self._parent = parent
        self._reader: asyncio.Task[None] | None = None

    def __str__(self) -> str:
        return f"ConnectionActor {self.connection_id} ({self.connection.url or 'unopened'})"

    async def on_receive(self, message: Any) -> Any:
        match message:
            case SendFrame(frame=frame):
                await self.connection.send_frame(frame)
            case SendPing():
                await self.connection.ping()
            case OpenSocket(spec=spec):
                await self._open(spec)
            case CloseSocket():
                await self._close()
            case _:
                return super().on_receive(message)
        return None

    async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
        await self._close()

    async def on_failure(self, *_exc_info: Any) -> None:  # type: ignore[override]
        await self._close()

    async def _open(self, spec: ConnectionSpec) -> None:
        await self.connection.connect(
            spec.url,
            ping_timeout=spec.ping_timeout,
            auto_ping=spec.auto_ping,
            message_timeout=spec.message_timeout,
            ws_headers=spec.headers,
            verify_ssl=spec.verify_ssl,
        )
        self._reader = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"networkpype-reader-{self.connection_id}"
        )
        if self._parent is not None:
            self._parent.tell(SocketOpened(connection_id=self.connection_id, url=spec.url))

    async def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                # Re-raise only when *we* are being cancelled, not the reader we cancelled.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        await self.connection.disconnect()

    async def _read_loop(self) -> None:
        sink = self._sink
        try:
            # The connection stays open after a message timeout: the consumer decides.
            await self.connection.pump(sink.offer, sink.put, sink.fail)
        except NotConnectedError:
            return  # closed by us between two frames
        except Exception as exc:
            logger.info("%s: connection lost: %s", self, exc)
            if self._parent is not None:
                self._parent.tell(SocketFailed(connection_id=self.connection_id, error=exc))
            else:
                sink.fail(exc)
