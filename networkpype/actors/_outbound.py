"""The outbound pipeline of a manager actor: pre-processors → auth → throttler → pacing, on a
private copy of each request. Part of :mod:`networkpype.actors.manager`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from pykka import ActorDeadError, ActorRef

from networkpype.protocol.errors import ConfigurationError, ConnectionClosedError
from networkpype.protocol.messages import SendFrame, SendRequest
from networkpype.wire.processor import WebSocketPreProcessor
from networkpype.wire.request import WebSocketRequest

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = ["OutboundPipeline", "Pace"]


class Pace(Protocol):
    """A connection's spacing (a sharded manager's ``min_send_interval``): every frame it
    sends, replays included, first waits for ``turn()``. The connection itself spaces and
    stamps each frame as it writes it, control frames too (see
    :class:`networkpype.wire.pacing.FramePacer`): waiting here keeps the wait in the
    outbox, out of the connection actor's inbox."""

    async def turn(self) -> None: ...


class OutboundPipeline:
    """pre-processors → auth → throttler, on a private copy of each request; shared by every
    connection of a manager (each brings its own ``Pace``). The pre-processors are taken as
    they are then (a tuple: none costs nothing)."""

    __slots__ = ("auth", "pre_processors", "throttler")

    def __init__(
        self,
        pre_processors: Iterable[WebSocketPreProcessor],
        auth: Auth | None,
        throttler: AsyncThrottler | None,
    ) -> None:
        self.pre_processors = tuple(pre_processors)
        self.auth = auth
        self.throttler = throttler

    async def prepare(self, request: WebSocketRequest) -> WebSocketRequest:
        """The request as it will go out: copied, pre-processed, authenticated. With no
        pre-processor and no signing nothing changes it, so it goes out as it is (a deep
        copy per send, and the instance dict it makes the caller's request keep, are
        spared)."""
        if not self.pre_processors and not request.is_auth_required:
            return request
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

    async def send(
        self, request: WebSocketRequest, connection: ActorRef[Any], pace: Pace | None = None
    ) -> None:
        """Prepare ``request``, wait for its turn and its rate limit, send it through
        ``connection``."""
        prepared = await self.prepare(request)
        message: SendFrame | SendRequest
        if type(prepared).send_with_connection is not WebSocketRequest.send_with_connection:
            # A class of the user's that sends itself (NetworkPype's way): through its method.
            message = SendRequest(request=prepared)
        else:
            message = SendFrame(frame=prepared.to_frame())
        limit_id = prepared.throttler_limit_id
        if pace is not None:
            await pace.turn()
        await self._send(message, limit_id, connection)

    async def _send(
        self, message: SendFrame | SendRequest, limit_id: str | None, connection: ActorRef[Any]
    ) -> None:
        try:
            if limit_id is not None and self.throttler is not None:
                async with self.throttler.execute_task(limit_id):
                    await connection.ask(message, block=False)
            else:
                await connection.ask(message, block=False)
        except ActorDeadError as exc:  # the connection actor ended: the connection is gone
            raise ConnectionClosedError(
                "the connection ended before the send; it was not sent", code=1006
            ) from exc
