"""``WebSocketManager``: the seed's recommended interface, a facade over the manager actor.

Outbound calls (``send``, ``subscribe``, ``ping``, ``connect``, ``disconnect``) are messages
to the manager actor, which owns the pipeline and the connection actor. Inbound, the
consumer reads the delivery queue the connection's reader fills, and post-processors run in
the consumer's task as each message is taken: no actor hop per frame.

All methods must be awaited on the event loop that called ``connect()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pykka import ActorRef

from networkpype.actors.delivery import DeliveryQueue, QueueClosed
from networkpype.actors.manager import ManagerActor, OutboundPipeline
from networkpype.actors.runtime import stop_actor
from networkpype.protocol.errors import ConfigurationError, NotConnectedError
from networkpype.protocol.messages import (
    Connect,
    ConnectionSpec,
    Disconnect,
    Send,
    SendPing,
    Subscribe,
    Unsubscribe,
)
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.websocket.request import WebSocketRequest
from networkpype.websocket.response import WebSocketResponse

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = ["DEFAULT_MAX_QUEUE", "WebSocketManager"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 10_000
"""Messages buffered towards the consumer before the reader stops reading the socket."""


class WebSocketManager:
    """Pre/post-processing, authentication and throttling around one WebSocket.

    ``connection`` is the socket to drive (``ConnectionManagersFactory.get_ws_manager()``
    makes one on the shared session). ``max_queue`` bounds the messages buffered towards the
    consumer: when the consumer falls behind, reading stops (TCP pushes back) and nothing is
    dropped.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        throttler: AsyncThrottler | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        auth: Auth | None = None,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        if max_queue < 1:
            raise ConfigurationError(f"max_queue must be at least 1, got {max_queue}")
        self._connection = connection
        self._pipeline = OutboundPipeline(list(ws_pre_processors or []), auth, throttler)
        self._post_processors = list(ws_post_processors or [])
        self._queue: DeliveryQueue[WebSocketResponse] = DeliveryQueue(max_queue)
        self._queue.close()
        self._actor: ActorRef[ManagerActor] | None = None

    # -- seed API ----------------------------------------------------------------------

    @property
    def connection(self) -> WebSocketConnection:
        return self._connection

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._connection.connected

    @property
    def last_recv_time(self) -> float:
        """Unix time (seconds) of the last data frame received; 0.0 before the first."""
        return self._connection.last_recv_time

    async def connect(
        self,
        ws_url: str,
        *,
        ping_timeout: float = 10,
        auto_ping: bool = False,
        message_timeout: float | None = None,
        ws_headers: dict[str, Any] | None = None,
        verify_ssl: bool = True,
    ) -> None:
        """Open the WebSocket; parameters as ``WebSocketConnection.connect``.

        Raises ``AlreadyConnectedError`` when connected, and the handshake errors of the
        error tree when the server cannot be reached or refuses.
        """
        spec = ConnectionSpec(
            url=ws_url,
            ping_timeout=ping_timeout,
            auto_ping=auto_ping,
            message_timeout=message_timeout,
            headers={str(k): str(v) for k, v in ws_headers.items()} if ws_headers else None,
            verify_ssl=verify_ssl,
        )
        if self._actor is None:
            self._queue = DeliveryQueue(self._queue.maxsize)
            self._actor = ManagerActor.start(self._connection, self._queue, self._pipeline)
        try:
            await self._actor.ask(Connect(spec=spec), block=False)
        except BaseException:
            if not self._connection.connected:
                await self._shutdown()
            raise

    async def disconnect(self) -> None:
        """Close the WebSocket and stop its actors. Idempotent. A consumer waiting in
        ``receive()`` gets what was already queued, then None."""
        await self._shutdown()

    async def _shutdown(self) -> None:
        actor, self._actor = self._actor, None
        self._queue.close()
        if actor is not None:
            try:
                await actor.ask(Disconnect(), block=False)
            finally:
                await stop_actor(actor)

    def _require_actor(self) -> ActorRef[ManagerActor]:
        if self._actor is None:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return self._actor

    async def send(self, request: WebSocketRequest) -> None:
        """Pre-process, authenticate when ``is_auth_required``, throttle when the request
        names a ``throttler_limit_id``, and send. Returns once the frame is written."""
        await self._require_actor().ask(Send(request=request), block=False)

    async def subscribe(self, request: WebSocketRequest) -> None:
        """Send ``request`` and remember it: after every reconnection it is sent again,
        processed and signed afresh. ``unsubscribe`` forgets it."""
        await self._require_actor().ask(Subscribe(request=request), block=False)

    async def unsubscribe(
        self, subscription: WebSocketRequest, request: WebSocketRequest | None = None
    ) -> None:
        """Forget ``subscription`` (the object given to ``subscribe``) and, when given, send
        ``request`` to tell the server. Raises ``KeyError`` for an unknown subscription."""
        await self._require_actor().ask(
            Unsubscribe(subscription=subscription, send=request), block=False
        )

    async def ping(self) -> None:
        """Send a WebSocket ping frame."""
        await self._require_actor().ask(SendPing(), block=False)

    async def receive(self) -> WebSocketResponse | None:
        """The next message, post-processed; None once disconnected and drained.

        Raises ``ConnectionClosedError`` (a ``ConnectionError``) after the server closed the
        connection or it broke, and ``MessageTimeoutError`` (a ``TimeoutError``) when
        ``message_timeout`` elapsed without a message.
        """
        queue = self._queue
        try:
            try:
                response = queue.get_nowait()
            except asyncio.QueueEmpty:
                response = await queue.get()
        except QueueClosed:
            return None
        for processor in self._post_processors:
            response = await processor.post_process(response)
        return response

    async def iter_messages(self) -> AsyncIterator[WebSocketResponse]:
        """Yield each message, post-processed, until ``disconnect()``; raises as
        ``receive()`` does when the connection fails."""
        # The consumer's side of the hot path: take whatever the reader has queued in one
        # step, then hand it out without touching the queue per message.
        processors = self._post_processors
        while True:
            queue = self._queue
            try:
                try:
                    batch = queue.get_batch_nowait()
                except asyncio.QueueEmpty:
                    batch = await queue.get_batch()
            except QueueClosed:
                return
            for response in batch:
                for processor in processors:
                    response = await processor.post_process(response)
                yield response
