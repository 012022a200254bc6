"""The manager actor: the outbound pipeline, the subscription record, and the supervised
connection.

Outbound, every request runs: a private copy → pre-processors in order →
``Auth.ws_authenticate`` when ``is_auth_required`` → the throttler when the request names a
``throttler_limit_id`` → the connection actor. The caller's request object is never mutated:
a recorded subscription keeps the caller's original, so a replay is processed and signed
afresh. Sends leave in the order they were asked for, through one outbox task the manager
owns, so the inbox stays free while a send waits for its rate limit.

The connection actor is a child of a :class:`~networkpype.supervisor.SupervisorActor`. When
the supervisor reports ``ChildRestarted``, the manager queues, ahead of any later send, the
``on_connect`` requests (a login, say) and then every recorded subscription in its original
order. When it reports ``ChildGaveUp``, the consumer's stream ends with ``GaveUpError``.
Inbound frames bypass this actor entirely (see ``ConnectionActor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pykka import ActorDeadError, ActorRef

from networkpype.actors.connection import ConnectionActor
from networkpype.actors.delivery import DeliveryQueue
from networkpype.actors.runtime import AsyncioActor, stop_actor, tell_quietly
from networkpype.protocol.errors import (
    ConfigurationError,
    ConnectionClosedError,
    GaveUpError,
    NotConnectedError,
)
from networkpype.protocol.events import GaveUp
from networkpype.protocol.messages import (
    AbortSocket,
    ChildGaveUp,
    ChildRestarted,
    Connect,
    ConnectionSpec,
    Disconnect,
    OpenSocket,
    Send,
    SendFrame,
    SendPing,
    StartChild,
    StartReading,
    Subscribe,
    Unsubscribe,
)
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import ChildSpec, EscalationHandler, SupervisorActor
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.processor.base import WebSocketPreProcessor
from networkpype.websocket.request import WebSocketRequest

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = ["ManagerActor", "OnConnect", "OutboundPipeline"]

logger = logging.getLogger(__name__)
_ids = itertools.count(1)

OnConnect = Callable[[], Awaitable[Sequence[WebSocketRequest]]]
"""Returns the requests to send first on every (re)connection, before the replay."""


PACE_LIMIT_ID = "pace"
"""The limit id of a connection's own pacing throttler (see ``OutboundPipeline``)."""


class OutboundPipeline:
    """pre-processors → auth → throttler, on a private copy of each request.

    ``pace`` (optional) is a throttler of this connection's own with one limit
    ``PACE_LIMIT_ID``: every frame sent, replays included, takes a place in it first (a
    ``RateLimit(PACE_LIMIT_ID, 1, gap)`` spaces frames evenly, ``gap`` seconds apart).
    """

    def __init__(
        self,
        pre_processors: list[WebSocketPreProcessor],
        auth: Auth | None,
        throttler: AsyncThrottler | None,
        pace: AsyncThrottler | None = None,
    ) -> None:
        self.pre_processors = pre_processors
        self.auth = auth
        self.throttler = throttler
        self.pace = pace

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
        if self.pace is not None:
            async with self.pace.execute_task(PACE_LIMIT_ID):
                await self._send(frame, limit_id, connection)
        else:
            await self._send(frame, limit_id, connection)

    async def _send(
        self, frame: str | bytes, limit_id: str | None, connection: ActorRef[Any]
    ) -> None:
        try:
            if limit_id is not None and self.throttler is not None:
                async with self.throttler.execute_task(limit_id):
                    await connection.ask(SendFrame(frame=frame), block=False)
            else:
                await connection.ask(SendFrame(frame=frame), block=False)
        except ActorDeadError as exc:  # the connection actor ended: the connection is gone
            raise ConnectionClosedError(
                "the connection ended before the send; it was not sent", code=1006
            ) from exc


@dataclass
class _Job:
    requests: list[WebSocketRequest]
    done: asyncio.Future[None] | None = None
    replay: bool = False
    generation: int = 0
    subscription: WebSocketRequest | None = None


@dataclass
class ManagerSettings:
    """Per-manager supervision settings (see ``WebSocketManager``).

    ``name`` is the connection id in events (default ``ws<n>``); ``intercept`` sees every
    text frame first (see ``ConnectionActor``); every connection attempt, reconnections
    included, takes a place in ``connect_throttler``'s ``connect_limit_id`` first.
    """

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    on_connect: OnConnect | None = None
    on_escalate: EscalationHandler | None = None
    parent: ActorRef[Any] | None = None
    name: str | None = None
    intercept: Callable[[bytes], bool] | None = None
    intercept_prefixes: tuple[bytes, ...] | None = None
    connect_throttler: AsyncThrottler | None = None
    connect_limit_id: str = "connect"


class ManagerActor(AsyncioActor):
    """Runs one supervised connection for a ``WebSocketManager`` facade.

    Replies to ``Connect`` once the socket is open (raising the handshake error otherwise).
    ``Send``/``Subscribe``/``Unsubscribe`` reply with an ``asyncio.Future`` that completes when
    the frame is written: the facade awaits it, so the caller sees the send's error.
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        sink: DeliveryQueue[Any],
        pipeline: OutboundPipeline,
        settings: ManagerSettings | None = None,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._sink = sink
        self._pipeline = pipeline
        self._settings = settings or ManagerSettings()
        self._supervisor: ActorRef[SupervisorActor] | None = None
        self._child: ActorRef[ConnectionActor] | None = None
        self._child_id = self._settings.name or f"ws{next(_ids)}"
        self._generation = 0
        self._subscriptions: list[WebSocketRequest] = []
        self._jobs: deque[_Job] = deque()
        self._stopping = False
        self._outbox: asyncio.Task[None] | None = None
        self.replays = 0
        self._gave_up: BaseException | None = None

    @property
    def subscriptions(self) -> list[WebSocketRequest]:
        return list(self._subscriptions)

    def status(self) -> tuple[int, int]:
        """(restarts so far, recorded subscriptions)."""
        return self.replays, len(self._subscriptions)

    async def on_start(self) -> None:  # type: ignore[override]  # async hooks: see runtime
        self._supervisor = SupervisorActor.start(
            listeners=[self.actor_ref],
            parent=self._settings.parent,
            on_escalate=self._settings.on_escalate,
        )

    async def on_receive(self, message: Any) -> Any:
        match message:
            case Send(request=request):
                self._require_child()
                return self._enqueue([request])
            case Subscribe(request=request):
                return self._subscribe(request)
            case Unsubscribe(subscription=subscription, send=request):
                self._forget(subscription)
                if request is None:
                    return None
                self._require_child()
                return self._enqueue([request])
            case SendPing():
                await self._require_child().ask(SendPing(), block=False)
            case Connect(spec=spec):
                await self._connect(spec)
            case ChildRestarted(ref=ref):
                self._child = ref
                self._generation += 1
                self.replays += 1
                self._jobs.appendleft(_Job([], replay=True, generation=self._generation))
                self._wake_outbox()
                # Only now does the consumer see Reconnected: a send it makes then goes out
                # on this connection, after the replay.
                tell_quietly(ref, StartReading())
            case ChildGaveUp(error=error):
                self._child = None
                self._gave_up = error
                self._sink.put_nowait(
                    GaveUp(connection_id=self._child_id, at=time.time(), cause=str(error))
                )
                self._sink.fail(error)
                self._sink.close()
            case Disconnect():
                await self._shutdown()
            case _:
                return super().on_receive(message)
        return None

    async def on_stop(self) -> None:  # type: ignore[override]
        await self._shutdown()

    async def on_failure(self, *_exc_info: Any) -> None:  # type: ignore[override]
        await self._shutdown()

    # -- commands --------------------------------------------------------------------------

    def _wake_outbox(self) -> None:
        """Run the queued jobs: the outbox task exists only while there are some (an idle
        connection holds no task for it)."""
        if self._stopping or (self._outbox is not None and not self._outbox.done()):
            return
        self._outbox = asyncio.get_running_loop().create_task(
            self._run_outbox(), name=f"networkpype-outbox-{self._child_id}"
        )

    def _require_child(self) -> ActorRef[ConnectionActor]:
        if self._child is None or not self._connection.connected:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return self._child

    def _subscribe(self, request: WebSocketRequest) -> asyncio.Future[None] | None:
        if self._gave_up is not None:
            raise GaveUpError(
                f"not recorded: the supervisor gave up on this connection ({self._gave_up}); "
                "connect() again"
            ) from self._gave_up
        if self._supervisor is None or (self._child is None and self._generation == 0):
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        self._subscriptions.append(request)
        if self._child is None or not self._connection.connected:
            # Between a failure and the reconnection: recorded, and sent by the replay.
            return None
        return self._enqueue([request], subscription=request)

    def _forget(self, subscription: WebSocketRequest) -> None:
        for i, recorded in enumerate(self._subscriptions):
            if recorded is subscription:
                del self._subscriptions[i]
                return
        for i, recorded in enumerate(self._subscriptions):
            if recorded == subscription:
                del self._subscriptions[i]
                return
        raise KeyError("not a recorded subscription: pass the object given to subscribe()")

    def _forget_quietly(self, subscription: WebSocketRequest) -> None:
        with contextlib.suppress(KeyError):
            self._forget(subscription)

    def _enqueue(
        self, requests: list[WebSocketRequest], subscription: WebSocketRequest | None = None
    ) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._jobs.append(
            _Job(requests, done, generation=self._generation, subscription=subscription)
        )
        self._wake_outbox()
        return done

    async def _connect(self, spec: ConnectionSpec) -> None:
        assert self._supervisor is not None
        connection, sink, supervisor = self._connection, self._sink, self._supervisor
        child_id, settings = self._child_id, self._settings

        async def start(generation: int, down_since: float | None, attempt: int) -> ActorRef[Any]:
            if settings.connect_throttler is not None:
                async with settings.connect_throttler.execute_task(settings.connect_limit_id):
                    pass  # attempts across the whole manager stay within the venue's limit
            child = ConnectionActor.start(
                connection,
                sink,
                supervisor,
                child_id,
                generation=generation,
                intercept=settings.intercept,
                intercept_prefixes=settings.intercept_prefixes,
            )
            try:
                await child.ask(
                    OpenSocket(
                        spec=spec, down_since=down_since, attempts=attempt, start_reading=False
                    ),
                    block=False,
                )
            except BaseException:
                await stop_actor(child)
                raise
            return child

        spec_ = ChildSpec(child_id=child_id, start=start, policy=self._settings.policy)
        self._child = await supervisor.ask(StartChild(spec=spec_), block=False)
        self._generation = 1
        await self._child.ask(StartReading(), block=False)
        if self._settings.on_connect is not None:
            self._jobs.appendleft(_Job([], replay=True, generation=self._generation))
            self._wake_outbox()

    async def _shutdown(self) -> None:
        self._stopping = True
        outbox, self._outbox = self._outbox, None
        if outbox is not None:
            outbox.cancel()
            try:
                await outbox
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        while self._jobs:
            job = self._jobs.popleft()
            if job.done is not None and not job.done.done():
                job.done.set_exception(NotConnectedError("disconnected before the send"))
        supervisor, self._supervisor = self._supervisor, None
        self._child = None
        if supervisor is not None:
            await stop_actor(supervisor)

    # -- the outbox ------------------------------------------------------------------------

    async def _run_outbox(self) -> None:
        while self._jobs:
            job = self._jobs.popleft()
            if job.done is not None and job.done.cancelled():
                continue
            try:
                await self._run_cancellable(job)
            except asyncio.CancelledError:
                if job.done is not None and not job.done.done():
                    job.done.cancel()
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the outbox itself is stopping
                continue  # the caller gave up on this send (cancelled or timed out): skip it
            except ConnectionError as exc:
                if job.subscription is not None and job.done is not None:
                    # Recorded: the replay after the reconnection sends it.
                    job.done.set_result(None)
                elif job.done is not None and not job.done.done():
                    job.done.set_exception(exc)
                elif job.replay:
                    logger.info("%s: replay interrupted: %s", self._child_id, exc)
            except Exception as exc:
                if job.subscription is not None:
                    self._forget_quietly(job.subscription)
                if job.done is not None and not job.done.done():
                    job.done.set_exception(exc)
                elif job.replay and self._child is not None:
                    # The connection must not stay open without its subscriptions: fail it,
                    # and let the supervisor decide (a fatal error escalates at once).
                    logger.error(
                        "%s: replay failed (%s: %s); dropping the connection",
                        self._child_id,
                        type(exc).__name__,
                        exc,
                    )
                    tell_quietly(self._child, AbortSocket(error=exc))
                elif job.replay:
                    logger.info("%s: replay interrupted: %s", self._child_id, exc)
            else:
                if job.done is not None and not job.done.done():
                    job.done.set_result(None)

    async def _run_cancellable(self, job: _Job) -> None:
        """Run ``job``; a caller that stops waiting for it (``done`` cancelled) cancels it, so
        an abandoned send neither goes out later nor holds up the sends behind it."""
        done = job.done
        if done is None:
            await self._run_job(job)
            return
        runner = asyncio.get_running_loop().create_task(self._run_job(job))

        def abandon(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                runner.cancel()

        done.add_done_callback(abandon)
        try:
            await asyncio.shield(runner)
        except asyncio.CancelledError:
            runner.cancel()  # the outbox is stopping: take the job down with it
            await asyncio.gather(runner, return_exceptions=True)
            raise
        finally:
            done.remove_done_callback(abandon)

    async def _run_job(self, job: _Job) -> None:
        child = self._child
        if child is None or job.generation != self._generation:
            raise ConnectionClosedError(
                "the connection was lost before the send; it was not sent", code=1006
            )
        requests = job.requests
        if job.replay:
            requests = []
            if self._settings.on_connect is not None:
                requests.extend(await self._settings.on_connect())
            if self._generation > 1:  # the first connection's subscriptions went out live
                requests.extend(self._subscriptions)
            logger.info("%s: replaying %d requests", self._child_id, len(requests))
        for request in requests:
            if job.generation != self._generation:
                raise ConnectionClosedError("the connection was replaced mid-job", code=1006)
            await self._pipeline.send(request, child)
