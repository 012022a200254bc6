"""One connection of a manager actor: its connection actor (the supervisor's child), its
subscription record, and its outbox. Part of :mod:`networkpype.actors.manager`.

A manager actor holds one ``Link`` per connection it manages (one for a ``WebSocketManager``,
one per shard for a sharded manager). Everything here runs on the manager actor's loop; the
link's outbox task is owned by the link and cancelled by ``shutdown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pykka import ActorRef

from networkpype.actors._outbound import OutboundPipeline, Pace
from networkpype.protocol.errors import ConnectionClosedError, GaveUpError, NotConnectedError
from networkpype.protocol.messages import AbortSocket, ReplayDone, StartReading
from networkpype.runtime._helpers import tell_quietly
from networkpype.wire.connection import WebSocketConnection
from networkpype.wire.request import WebSocketRequest

__all__ = ["Link", "OnConnect"]

logger = logging.getLogger("networkpype.actors.manager")

OnConnect = Callable[[], Awaitable[Sequence[WebSocketRequest]]]
"""Returns the requests to send first on every (re)connection, before the replay."""


@dataclass(slots=True)
class _Job:
    requests: list[WebSocketRequest]
    done: asyncio.Future[None] | None = None
    replay: bool = False
    generation: int = 0
    subscription: WebSocketRequest | None = None


class Link:
    """One managed connection: ``id`` (the connection id in events and the supervisor's child
    id), the ``WebSocketConnection`` its connection actors drive, its optional ``Pace``.

    Sends leave in the order they were asked for, through one outbox task that exists only
    while jobs are queued (an idle connection holds no task, no queue). After a restart the
    ``on_connect`` requests and then every recorded subscription are queued ahead of any
    later send.
    """

    __slots__ = (
        "child",
        "connection",
        "gave_up",
        "generation",
        "id",
        "jobs",
        "on_connect",
        "opening",
        "outbox",
        "pace",
        "pipeline",
        "replays",
        "stopping",
        "subscriptions",
    )

    def __init__(
        self,
        link_id: str,
        connection: WebSocketConnection,
        pipeline: OutboundPipeline,
        pace: Pace | None = None,
        on_connect: OnConnect | None = None,
    ) -> None:
        self.id = link_id
        self.connection = connection
        self.pipeline = pipeline
        self.pace = pace
        self.on_connect = on_connect
        self.child: ActorRef[Any] | None = None
        self.generation = 0
        self.subscriptions: list[WebSocketRequest] = []
        self.jobs: deque[_Job] | None = None  # made when a job is queued, dropped when done
        self.outbox: asyncio.Task[None] | None = None
        self.opening: asyncio.Task[None] | None = None  # the first open, owned by the link
        self.replays = 0
        self.gave_up: BaseException | None = None
        self.stopping = False

    # -- events from the supervisor ----------------------------------------------------------

    def opened(self, ref: ActorRef[Any]) -> None:
        """The first connection is open (not reading yet)."""
        self.child = ref
        self.generation = 1
        if self.on_connect is not None:
            self._queue(_Job([], replay=True, generation=1), first=True)
        else:
            tell_quietly(ref, ReplayDone())  # subscriptions go out live from now on

    def restarted(self, ref: ActorRef[Any]) -> None:
        """A new incarnation is open: replay, then let it read. Only now does the consumer see
        ``Reconnected``, so a send it makes then goes out on this connection, after the
        replay."""
        self.child = ref
        self.generation += 1
        self.replays += 1
        self._queue(_Job([], replay=True, generation=self.generation), first=True)
        tell_quietly(ref, StartReading())

    def given_up(self, error: BaseException) -> None:
        self.child = None
        self.gave_up = error

    # -- commands ----------------------------------------------------------------------------

    def require_child(self) -> ActorRef[Any]:
        if self.child is None or not self.connection.connected:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return self.child

    def send(self, requests: list[WebSocketRequest]) -> asyncio.Future[None]:
        self.require_child()
        return self._enqueue(requests)

    def subscribe(self, request: WebSocketRequest) -> asyncio.Future[None] | None:
        if self.gave_up is not None:
            raise GaveUpError(
                f"not recorded: the supervisor gave up on this connection ({self.gave_up}); "
                "connect() again"
            ) from self.gave_up
        if self.child is None and self.generation == 0:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        self.subscriptions.append(request)
        if self.child is None or not self.connection.connected:
            # Between a failure and the reconnection: recorded, and sent by the replay.
            return None
        return self._enqueue([request], subscription=request)

    def forget(
        self, subscription: WebSocketRequest, replacement: WebSocketRequest | None = None
    ) -> None:
        """Take ``subscription`` out of the replay record (``replacement``, if given, takes
        its place). ``KeyError`` if it is not recorded."""
        subs = self.subscriptions
        for same in (lambda r: r is subscription, lambda r: r == subscription):
            for i, recorded in enumerate(subs):
                if same(recorded):
                    if replacement is None:
                        del subs[i]
                    else:
                        subs[i] = replacement
                    return
        raise KeyError("not a recorded subscription: pass the object given to subscribe()")

    async def shutdown(self) -> None:
        """Stop the first open and the outbox; queued sends fail with
        ``NotConnectedError``."""
        self.stopping = True
        for running in (self.opening, self.outbox):
            if running is None or running.done():
                continue
            running.cancel()
            try:
                await running
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        self.opening = self.outbox = None
        jobs, self.jobs = self.jobs, None
        while jobs:
            job = jobs.popleft()
            if job.done is not None and not job.done.done():
                job.done.set_exception(NotConnectedError("disconnected before the send"))
        self.child = None

    # -- the outbox --------------------------------------------------------------------------

    def _enqueue(
        self, requests: list[WebSocketRequest], subscription: WebSocketRequest | None = None
    ) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Its asker may have left (a fire-and-forget send, a caller gone at a shutdown): an
        # error nobody awaits any more is not reported as "never retrieved"; one who awaits
        # still gets it.
        done.add_done_callback(_seen)
        self._queue(_Job(requests, done, generation=self.generation, subscription=subscription))
        return done

    def _queue(self, job: _Job, *, first: bool = False) -> None:
        jobs = self.jobs
        if jobs is None:
            jobs = self.jobs = deque()
        if first:
            jobs.appendleft(job)
        else:
            jobs.append(job)
        if self.stopping or (self.outbox is not None and not self.outbox.done()):
            return
        self.outbox = asyncio.get_running_loop().create_task(
            self._run_outbox(), name=f"networkpype-outbox-{self.id}"
        )

    async def _run_outbox(self) -> None:
        while self.jobs:
            job = self.jobs.popleft()
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
                    logger.info("%s: replay interrupted: %s", self.id, exc)
            except Exception as exc:
                self._failed(job, exc)
            else:
                if job.done is not None and not job.done.done():
                    job.done.set_result(None)
                if job.replay and self.child is not None and job.generation == self.generation:
                    tell_quietly(self.child, ReplayDone())
        # An idle connection keeps no queue and no finished task.
        self.jobs = None
        self.outbox = None

    def _failed(self, job: _Job, exc: Exception) -> None:
        if job.subscription is not None:
            with contextlib.suppress(KeyError):
                self.forget(job.subscription)
        if job.done is not None and not job.done.done():
            job.done.set_exception(exc)
        elif job.replay and self.child is not None and job.generation == self.generation:
            # The connection must not stay open without its subscriptions: fail it, and let
            # the supervisor decide (a fatal error escalates at once).
            logger.error(
                "%s: replay failed (%s: %s); dropping the connection",
                self.id,
                type(exc).__name__,
                exc,
            )
            tell_quietly(self.child, AbortSocket(error=exc))
        elif job.replay:
            logger.info("%s: replay interrupted: %s", self.id, exc)

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
        child = self.child
        if child is None or job.generation != self.generation:
            raise ConnectionClosedError(
                "the connection was lost before the send; it was not sent", code=1006
            )
        requests = job.requests
        if job.replay:
            requests = []
            if self.on_connect is not None:
                requests.extend(await self.on_connect())
            if self.generation > 1:  # the first connection's subscriptions went out live
                requests.extend(self.subscriptions)
            logger.info("%s: replaying %d requests", self.id, len(requests))
        for request in requests:
            if job.generation != self.generation:
                raise ConnectionClosedError("the connection was replaced mid-job", code=1006)
            await self.pipeline.send(request, child, self.pace)


def _seen(done: asyncio.Future[None]) -> None:
    """Mark ``done``'s error as retrieved (see ``Link._enqueue``)."""
    if not done.cancelled():
        done.exception()
