"""The manager actor: the outbound pipeline, the subscription records, and the supervised
connections.

One manager actor runs one :class:`~networkpype.supervisor.SupervisorActor` and, under it,
one connection actor per managed connection (a ``WebSocketManager`` has one; a sharded
manager has one per shard, so a connection costs one actor, not three). Each connection is a
:class:`~networkpype.actors._link.Link`: its child, its subscription record, its outbox.

Outbound, every request runs: a private copy → pre-processors in order →
``Auth.ws_authenticate`` when ``is_auth_required`` → the throttler when the request names a
``throttler_limit_id`` → the connection's pacing, if any → its connection actor. The caller's
request object is never mutated: a recorded subscription keeps the caller's original, so a
replay is processed and signed afresh. Sends leave in the order they were asked for, through
one outbox task per connection, so the inbox stays free while a send waits for its rate limit.

When the supervisor reports ``ChildRestarted``, the connection's ``on_connect`` requests (a
login, say) and then every recorded subscription are queued in their original order, ahead of
any later send. When it reports ``ChildGaveUp``, a ``GaveUp`` event is queued and the
consumer's stream ends with ``GaveUpError``, the other connections closing with it; under
``on_connection_gave_up="continue"`` the stream goes on while another connection is alive.
Inbound frames bypass this actor entirely (see ``ConnectionActor``).

Commands name their connection with ``connection_id``; None means the manager's only (first)
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from pykka import ActorRef

from networkpype.actors._link import Link, OnConnect
from networkpype.actors._outbound import OutboundPipeline, Pace
from networkpype.actors.connection import ConnectionActor
from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import (
    ConnectAbortedError,
    GaveUpError,
    NotConnectedError,
)
from networkpype.protocol.events import GaveUp
from networkpype.protocol.messages import (
    ChildGaveUp,
    ChildRestarted,
    Connect,
    ConnectionSpec,
    Disconnect,
    OpenChild,
    OpenSocket,
    Send,
    SendPing,
    StartChild,
    StartReading,
    Subscribe,
    TerminateChild,
    Unsubscribe,
)
from networkpype.protocol.options import GAVE_UP_POLICIES, OnGaveUp, check_choice
from networkpype.runtime import AsyncioActor, stop_actor, stop_owned_actor, tell_quietly
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import ChildSpec, EscalationHandler, SupervisorActor
from networkpype.wire.connection import WebSocketConnection
from networkpype.wire.request import WebSocketRequest

__all__ = [
    "GAVE_UP_POLICIES",
    "ManagerActor",
    "ManagerSettings",
    "OnConnect",
    "OutboundPipeline",
    "Pace",
]

logger = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass(slots=True)
class ManagerSettings:
    """Per-manager supervision settings (see ``WebSocketManager``), shared by its connections.

    ``name`` is the connection id in events of a single-connection manager (default
    ``ws<n>``); ``intercept`` sees every text frame first (see ``ConnectionActor``); every
    connection attempt, reconnections included, runs inside ``connect_gate(connection_id)``
    (an async context manager around the opening handshake: a sharded manager's attempt
    budget, which holds a place until the handshake's outcome is known).

    ``on_connection_gave_up`` says what a connection given up on does to the others:
    ``"stop"`` ends the shared stream with the ``GaveUpError`` and closes them all;
    ``"continue"`` leaves them running and the stream open, after its ``GaveUp`` event, as
    long as another connection is alive (the last one gone ends it as ``"stop"`` does), and
    calls ``on_connection_lost(id, error)``. ``topics_of(id)`` names the topics a connection
    carries, for its ``GaveUp`` event. Both callbacks run on the actor's loop and must not
    block.
    """

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    on_connect: OnConnect | None = None
    on_escalate: EscalationHandler | None = None
    parent: ActorRef[Any] | None = None
    name: str | None = None
    intercept: Callable[[bytes], bool] | None = None
    intercept_prefixes: tuple[bytes, ...] | None = None
    connect_gate: Callable[[str], AbstractAsyncContextManager[Any]] | None = None
    on_connection_gave_up: OnGaveUp = "stop"
    topics_of: Callable[[str], tuple[str, ...]] | None = None
    on_connection_lost: Callable[[str, GaveUpError], None] | None = None

    def __post_init__(self) -> None:
        check_choice("on_connection_gave_up", self.on_connection_gave_up, GAVE_UP_POLICIES)


class ManagerActor(AsyncioActor):
    """Runs supervised connections for a ``WebSocketManager`` or a sharded manager.

    ``connection`` is the connection a ``Connect`` without one opens (a ``WebSocketManager``'s).
    ``Connect`` replies once the socket is open (raising the handshake error otherwise).
    ``Send``/``Subscribe``/``Unsubscribe`` reply with an ``asyncio.Future`` that completes when
    the frame is written: the facade awaits it, so the caller sees the send's error.
    ``Disconnect(connection_id=...)`` closes one connection for good; ``Disconnect()`` all.
    """

    def __init__(
        self,
        connection: WebSocketConnection | None,
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
        self._links: dict[str, Link] = {}
        self._specs: dict[str, ConnectionSpec] = {}  # per link: how its incarnations open
        # Openings asked by OpenChild, held until done; None while there are none (an empty
        # set costs 216 B, and a manager is mostly idle).
        self._incarnations: set[asyncio.Task[None]] | None = None
        self._first: Link | None = None  # what a command without a connection_id means
        self._default_id = self._settings.name or f"ws{next(_ids)}"

    def subscriptions(self, connection_id: str | None = None) -> list[WebSocketRequest]:
        """The recorded subscriptions of a connection, in replay order."""
        link = self._links.get(connection_id) if connection_id else self._first
        return list(link.subscriptions) if link is not None else []

    def status(self, connection_id: str | None = None) -> tuple[int, int]:
        """(restarts so far, recorded subscriptions) of a connection."""
        link = self._links.get(connection_id) if connection_id else self._first
        return (link.replays, len(link.subscriptions)) if link is not None else (0, 0)

    def restarts(self) -> dict[str, int]:
        """Restarts so far per connection."""
        return {cid: link.replays for cid, link in self._links.items()}

    async def on_start(self) -> None:  # type: ignore[override]  # async hooks: see runtime
        self._supervisor = SupervisorActor.start(
            listeners=[self.actor_ref],
            parent=self._settings.parent,
            on_escalate=self._settings.on_escalate,
        )

    async def on_receive(self, message: Any) -> Any:
        match message:
            case Send(request=request, connection_id=cid):
                return self._link(cid).send([request])
            case Subscribe(request=request, connection_id=cid):
                return self._link(cid).subscribe(request)
            case Unsubscribe(
                subscription=subscription, send=request, connection_id=cid, replacement=new
            ):
                link = self._link(cid)
                link.forget(subscription, replacement=new)
                return None if request is None else link.send([request])
            case SendPing(connection_id=cid):
                await self._link(cid).require_child().ask(SendPing(), block=False)
            case Connect(
                spec=spec, connection_id=cid, connection=connection, pace=pace, retry=retry
            ):
                return self._connect(spec, cid, connection, pace, retry)
            case OpenChild() as request:
                self._open_incarnation(request)
            case ChildRestarted(child_id=cid, ref=ref):
                restarted = self._links.get(cid)
                if restarted is not None:
                    restarted.restarted(ref)
            case ChildGaveUp(child_id=cid, error=error):
                lost = self._links.get(cid)
                if lost is not None:
                    await self._gave_up(lost, error)
            case Disconnect(connection_id=cid):
                await (self._shutdown() if cid is None else self._close(cid))
            case _:
                return super().on_receive(message)
        return None

    async def on_stop(self) -> None:  # type: ignore[override]
        await self._shutdown()

    async def on_failure(self, *_exc_info: Any) -> None:  # type: ignore[override]
        await self._shutdown()

    # -- connections -----------------------------------------------------------------------

    def _link(self, connection_id: str | None) -> Link:
        link = self._links.get(connection_id) if connection_id else self._first
        if link is None or self._supervisor is None:
            if connection_id is not None and self._supervisor is not None:
                raise NotConnectedError(f"no connection {connection_id!r}")
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return link

    def _connect(
        self,
        spec: ConnectionSpec,
        connection_id: str | None,
        connection: WebSocketConnection | None,
        pace: Pace | None,
        retry: bool = False,
    ) -> asyncio.Future[None]:
        """Register the connection and open it in a task the link owns: the inbox goes on
        serving the other connections (their failures, restarts, sends) meanwhile. Closing
        the link first (``link.shutdown`` cancels that task) fails the returned future with
        ``ConnectAbortedError``."""
        if self._supervisor is None:
            raise NotConnectedError("the manager is stopping")
        link_id = connection_id or self._default_id
        if link_id in self._links:
            raise ValueError(f"connection {link_id!r} is already managed")
        socket = connection or self._connection
        if socket is None:
            raise ValueError("Connect needs a connection: this manager has no default one")
        link = Link(link_id, socket, self._pipeline, pace, self._settings.on_connect)
        self._links[link_id] = link
        self._specs[link_id] = spec
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = loop.create_future()
        link.opening = loop.create_task(
            self._open(link, spec, opened, retry), name=f"networkpype-open-{link_id}"
        )
        return opened

    async def _open(
        self, link: Link, spec: ConnectionSpec, opened: asyncio.Future[None], retry: bool
    ) -> None:
        assert self._supervisor is not None
        try:
            child = ChildSpec(child_id=link.id, owner=self.actor_ref, policy=self._settings.policy)
            started = await self._supervisor.ask(StartChild(spec=child, retry=retry), block=False)
            ref = await started
            await ref.ask(StartReading(), block=False)
        except BaseException as exc:
            if self._links.get(link.id) is link:
                del self._links[link.id]
                self._specs.pop(link.id, None)
                if self._supervisor is not None:  # whatever the supervisor had started
                    tell_quietly(self._supervisor, TerminateChild(child_id=link.id))
            if isinstance(exc, asyncio.CancelledError):
                # Closed before it was open: the waiting connect() is told why, rather than
                # cancelled (its own task was not).
                if not opened.done():
                    opened.set_exception(
                        ConnectAbortedError(
                            f"{link.id}: disconnect() was called while connecting; "
                            "the connection was not opened"
                        )
                    )
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                return
            if not opened.done():
                opened.set_exception(exc)
            return
        finally:
            link.opening = None
        link.opened(ref)
        if self._first is None:
            self._first = link
        if not opened.done():
            opened.set_result(None)

    def _open_incarnation(self, request: OpenChild) -> None:
        """The supervisor's ``OpenChild``: open the connection's next incarnation in a task
        of its own, the reply completed with its ref or the attempt's error."""
        reply: asyncio.Future[ActorRef[Any]] = request.reply
        if reply.done():
            return  # the supervisor stopped waiting before this was read
        link, spec = self._links.get(request.child_id), self._specs.get(request.child_id)
        if link is None or spec is None:
            reply.set_exception(NotConnectedError(f"no connection {request.child_id!r}"))
            return
        task = asyncio.get_running_loop().create_task(
            self._incarnation(request, link.connection, spec),
            name=f"networkpype-open-{request.child_id}-{request.generation}",
        )
        if self._incarnations is None:
            self._incarnations = set()
        self._incarnations.add(task)
        task.add_done_callback(self._incarnation_ended)

        def abandoned(future: asyncio.Future[ActorRef[Any]]) -> None:
            if future.cancelled() and not task.done():
                task.cancel()  # the supervisor stopped waiting: stop opening

        reply.add_done_callback(abandoned)

    def _incarnation_ended(self, task: asyncio.Task[None]) -> None:
        incarnations = self._incarnations
        if incarnations is not None:
            incarnations.discard(task)
            if not incarnations:
                self._incarnations = None

    async def _incarnation(
        self, request: OpenChild, connection: WebSocketConnection, spec: ConnectionSpec
    ) -> None:
        reply: asyncio.Future[ActorRef[Any]] = request.reply
        try:
            ref = await self._start_child(
                connection,
                request.child_id,
                spec,
                request.generation,
                request.down_since,
                request.attempt,
            )
        except asyncio.CancelledError:
            reply.cancel()
            raise
        except Exception as exc:
            if not reply.done():
                reply.set_exception(exc)
            return
        if reply.done():  # the supervisor stopped waiting while it opened
            await stop_owned_actor(ref)
            return
        reply.set_result(ref)

    async def _start_child(
        self,
        connection: WebSocketConnection,
        child_id: str,
        spec: ConnectionSpec,
        generation: int,
        down_since: float | None,
        attempt: int,
    ) -> ActorRef[Any]:
        """The supervisor's ``start`` for one connection: a connection actor, opened."""
        settings = self._settings
        gate = settings.connect_gate
        # The attempt stays within the venue's limit, counted until its outcome is known.
        async with gate(child_id) if gate is not None else contextlib.nullcontext():
            return await self._open_child(
                connection, child_id, spec, generation, down_since, attempt
            )

    async def _open_child(
        self,
        connection: WebSocketConnection,
        child_id: str,
        spec: ConnectionSpec,
        generation: int,
        down_since: float | None,
        attempt: int,
    ) -> ActorRef[Any]:
        """One attempt: a connection actor, opened, or stopped and the error raised."""
        settings = self._settings
        child = ConnectionActor.start(
            connection,
            self._sink,
            self._supervisor,
            child_id,
            generation=generation,
            intercept=settings.intercept,
            intercept_prefixes=settings.intercept_prefixes,
        )
        try:
            opened = await child.ask(
                OpenSocket(spec=spec, down_since=down_since, attempts=attempt, start_reading=False),
                block=False,
            )
            await opened  # the handshake runs in the child's task: its inbox takes a stop
        except BaseException:
            # Known to nobody else yet: stopped (its socket closed) before this returns,
            # however often this task is cancelled meanwhile.
            await stop_owned_actor(child)
            raise
        return child

    async def _gave_up(self, lost: Link, error: GaveUpError) -> None:
        """The supervisor gave up on ``lost``: its ``GaveUp`` event, then the stream goes on
        (``"continue"`` with another connection alive) or ends with ``error``. The link stays,
        given up: a subscribe on it raises ``GaveUpError``."""
        lost.given_up(error)
        settings = self._settings
        topics = settings.topics_of(lost.id) if settings.topics_of is not None else ()
        self._sink.put_nowait(
            GaveUp(connection_id=lost.id, at=time.time(), cause=str(error), topics=topics)
        )
        alive = [cid for cid, link in self._links.items() if link.gave_up is None]
        if settings.on_connection_gave_up == "continue" and alive:
            if settings.on_connection_lost is not None:
                settings.on_connection_lost(lost.id, error)
            return
        self._sink.fail(error)
        self._sink.close()
        # The stream they shared has ended: the other connections close too, rather than
        # fill a queue nobody reads (until disconnect()).
        await asyncio.gather(*(self._close(cid) for cid in alive))

    async def _close(self, connection_id: str) -> None:
        """Close one connection for good: no restart, queued sends fail."""
        link = self._links.pop(connection_id, None)
        self._specs.pop(connection_id, None)
        if link is None:
            return
        if self._first is link:
            self._first = next(iter(self._links.values()), None)
        await link.shutdown()
        if self._supervisor is not None:
            await self._supervisor.ask(TerminateChild(child_id=connection_id), block=False)

    async def _shutdown(self) -> None:
        links, self._links, self._first = list(self._links.values()), {}, None
        self._specs.clear()
        await asyncio.gather(*(link.shutdown() for link in links))
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await stop_actor(supervisor)
