"""The manager actor: the outbound pipeline, the subscription record, and the child
connection actor.

Outbound, every request runs: a private copy → pre-processors in order →
``Auth.ws_authenticate`` when ``is_auth_required`` → the throttler when the request names a
``throttler_limit_id`` → the connection actor. The caller's request object is never mutated:
a recorded subscription keeps the caller's original, so a replay is processed and signed
afresh. Inbound frames bypass this actor entirely (see ``ConnectionActor``).
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING, Any

from pykka import ActorRef

from networkpype.actors.connection import ConnectionActor
from networkpype.actors.delivery import DeliveryQueue
from networkpype.actors.runtime import AsyncioActor, stop_actor
from networkpype.protocol.errors import ConfigurationError, NotConnectedError
from networkpype.protocol.messages import (
    CloseSocket,
    Connect,
    ConnectionSpec,
    Disconnect,
    OpenSocket,
    Send,
    SendFrame,
    SendPing,
    SocketFailed,
    SocketOpened,
    Subscribe,
    Unsubscribe,
)
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.processor.base import WebSocketPreProcessor
from networkpype.websocket.request import WebSocketRequest

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = ["ManagerActor", "OutboundPipeline"]

logger = logging.getLogger(__name__)
_ids = itertools.count(1)


class OutboundPipeline:
    """pre-processors → auth → throttler, on a private copy of each request."""

    def __init__(
        self,
        pre_processors: list[WebSocketPreProcessor],
        auth: Auth | None,
        throttler: AsyncThrottler | None,
    ) -> None:
        self.pre_processors = pre_processors
        self.auth = auth
        self.throttler = throttler

    async def prepare(self, request: WebSocketRequest) -> WebSocketRequest:
        """The request as it will go out: copied, pre-processed, authenticated."""
        prepared = request.copy()
        for processor in self.pre_processors:
            prepared = await processor.pre_process(prepared)
        if prepared.is_auth_required:
            if self.auth is None:
                raise ConfigurationError(
                    "the request has is_auth_required=True but the factory was built without "
                    "an Auth; pass auth=... to ConnectionManagersFactory"
                )
            prepared = await self.auth.ws_authenticate(prepared)
        return prepared

    async def send(self, request: WebSocketRequest, connection: ActorRef[Any]) -> None:
        """Prepare ``request``, wait for its rate limit, send it through ``connection``."""
        prepared = await self.prepare(request)
        frame = prepared.to_frame()
        limit_id = prepared.throttler_limit_id
        if limit_id is not None and self.throttler is not None:
            async with self.throttler.execute_task(limit_id):
                await connection.ask(SendFrame(frame=frame), block=False)
        else:
            await connection.ask(SendFrame(frame=frame), block=False)


class ManagerActor(AsyncioActor):
    """Runs one managed connection for a ``WebSocketManager`` facade.

    Replies to ``Connect`` once the socket is open (raising the handshake error otherwise),
    to ``Send``/``Subscribe`` once the frame is written. A connection failure reported by
    the child is queued to the consumer, after the frames read before it.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        sink: DeliveryQueue[Any],
        pipeline: OutboundPipeline,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._sink = sink
        self._pipeline = pipeline
        self._child: ActorRef[ConnectionActor] | None = None
        self._child_id = ""
        self._subscriptions: list[WebSocketRequest] = []

    @property
    def subscriptions(self) -> list[WebSocketRequest]:
        return list(self._subscriptions)

    async def on_receive(self, message: Any) -> Any:
        match message:
            case Send(request=request):
                await self._pipeline.send(request, self._require_child())
            case Subscribe(request=request):
                await self._pipeline.send(request, self._require_child())
                self._subscriptions.append(request)
            case Unsubscribe(subscription=subscription, send=request):
                self._forget(subscription)
                if request is not None:
                    await self._pipeline.send(request, self._require_child())
            case SendPing():
                await self._require_child().ask(SendPing(), block=False)
            case Connect(spec=spec):
                await self._connect(spec)
            case Disconnect():
                await self._stop_child()
            case SocketOpened():
                pass
            case SocketFailed(connection_id=cid, error=error):
                if cid == self._child_id:
                    self._sink.fail(error)
                    await self._stop_child()
            case _:
                return super().on_receive(message)
        return None

    async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
        await self._stop_child()

    def _require_child(self) -> ActorRef[ConnectionActor]:
        if self._child is None or not self._connection.connected:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return self._child

    def _forget(self, subscription: WebSocketRequest) -> None:
        for i, recorded in enumerate(self._subscriptions):
            if recorded is subscription or recorded == subscription:
                del self._subscriptions[i]
                return
        raise KeyError("not a recorded subscription")

    async def _connect(self, spec: ConnectionSpec) -> None:
        self._child_id = f"c{next(_ids)}"
        child = ConnectionActor.start(self._connection, self._sink, self.actor_ref, self._child_id)
        try:
            await child.ask(OpenSocket(spec=spec), block=False)
        except BaseException:
            await stop_actor(child)
            raise
        self._child = child

    async def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            try:
                await child.ask(CloseSocket(), block=False)
            finally:
                await stop_actor(child)
