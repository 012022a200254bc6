"""The supervisor actor: starts children, restarts them by the policy, escalates.

Each incarnation of a child is started and opened by the child's owner
(``ChildSpec.owner``, e.g. a manager actor), asked with an ``OpenChild`` message. The
supervisor applies :mod:`networkpype.supervisor.policy` (pure) to the reports its children
send (``SocketOpened``, ``SocketFailed``): a failed child is stopped, and restarted after the
policy's delay by a task the supervisor owns; a child past its restart intensity, or failed
fatally, is given up on and every listener (the manager, a host actor) is told
``ChildGaveUp``, and ``on_escalate`` is called. Restarts are announced as ``ChildRestarted``.

The inbox never waits on a restart: delays and redials run in owned tasks, so ``stop`` is
prompt from any state (mid-backoff, mid-handshake); stopping cancels them and stops every
child.

Logging: INFO for every restart with its delay and reason, WARNING for every give-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pykka import ActorRef

from networkpype.protocol.errors import GaveUpError
from networkpype.protocol.messages import (
    ChildGaveUp,
    ChildRestarted,
    OpenChild,
    SocketFailed,
    SocketOpened,
    StartChild,
    TerminateChild,
)
from networkpype.runtime import AsyncioActor, cancel_and_wait, stop_owned_actor, tell_quietly
from networkpype.supervisor.policy import (
    ChildState,
    Escalate,
    Ignore,
    Kind,
    Restart,
    RestartPolicy,
    Strategy,
    children_to_restart,
)

__all__ = ["ChildSpec", "EscalationHandler", "SupervisorActor"]

logger = logging.getLogger(__name__)

EscalationHandler = Callable[[str, GaveUpError], None]
"""``on_escalate(child_id, error)``: called on the supervisor's loop when it gives up."""


@dataclass(slots=True)
class ChildSpec:
    """How to start one child and how to restart it: ``owner`` is the actor that starts and
    opens each incarnation when told ``OpenChild`` (see that message)."""

    child_id: str
    owner: ActorRef[Any]
    policy: RestartPolicy = field(default_factory=RestartPolicy)


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    state: ChildState
    ref: ActorRef[Any] | None = None
    generation: int = 0
    down_since: float | None = None
    restarts: int = 0
    last_error: BaseException | None = None
    task: asyncio.Task[None] | None = None


class SupervisorActor(AsyncioActor):
    """Supervises connection actors (or any child that reports like one).

    ``listeners`` are told ``ChildRestarted``/``ChildGaveUp``; ``parent`` (a host's actor)
    is told ``ChildGaveUp`` too; ``on_escalate`` is the callback form. ``strategy`` is the
    OTP restart strategy over the children in start order.
    """

    def __init__(
        self,
        *,
        listeners: list[ActorRef[Any]] | None = None,
        parent: ActorRef[Any] | None = None,
        on_escalate: EscalationHandler | None = None,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._listeners = list(listeners or [])
        self._parent = parent
        self._on_escalate = on_escalate
        self._strategy = strategy
        self._clock = clock
        self._children: dict[str, _Child] = {}
        # Stops of children no longer listed, held until done; None while there are none
        # (an empty set costs 216 B, and a supervisor is mostly idle).
        self._stopping: set[asyncio.Task[None]] | None = None

    def restarts(self) -> dict[str, int]:
        """Restarts per child so far."""
        return {cid: child.restarts for cid, child in self._children.items()}

    async def on_receive(self, message: Any) -> Any:
        match message:
            case SocketFailed(
                connection_id=cid, error=error, generation=generation, served=served
            ):
                child = self._children.get(cid)
                if child is not None and child.generation == generation:
                    self._failed(child, error, served=served)
            case SocketOpened(connection_id=cid, generation=generation):
                child = self._children.get(cid)
                if child is not None and child.generation == generation:
                    child.state = child.spec.policy.on_opened(child.state, self._clock())
            case StartChild(spec=spec, retry=retry):
                return self._start_first(spec, retry)
            case TerminateChild(child_id=cid):
                await self._terminate(cid)
            case _:
                return super().on_receive(message)
        return None

    async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
        await asyncio.gather(*(self._terminate(cid) for cid in list(self._children)))
        while self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    async def on_failure(self, *_exc_info: Any) -> None:  # type: ignore[override]
        await self.on_stop()

    # -- children --------------------------------------------------------------------------

    def _start_first(self, spec: ChildSpec, retry: bool = False) -> asyncio.Future[ActorRef[Any]]:
        """Start ``spec``'s child in a task the child owns (the inbox never waits on a
        handshake: other children's reports go on being handled); the returned future gets
        its ref, or the first start's error (retried by the policy when ``retry``)."""
        if spec.child_id in self._children:
            raise ValueError(f"child {spec.child_id!r} is already supervised")
        child = _Child(spec=spec, state=ChildState(), generation=1)
        self._children[spec.child_id] = child
        loop = asyncio.get_running_loop()
        started: asyncio.Future[ActorRef[Any]] = loop.create_future()
        child.task = task = loop.create_task(
            self._open_first(child, started, retry), name=f"networkpype-start-{spec.child_id}"
        )

        def abandoned(future: asyncio.Future[ActorRef[Any]]) -> None:
            if future.cancelled() and not task.done():
                task.cancel()  # the starter stopped waiting: stop opening

        started.add_done_callback(abandoned)
        return started

    async def _open_first(
        self, child: _Child, started: asyncio.Future[ActorRef[Any]], retry: bool
    ) -> None:
        child_id = child.spec.child_id
        try:
            if retry:
                ref = await self._start_retrying(child)
            else:
                ref = await self._open(child.spec, child.generation, None, 0)
        except BaseException as exc:
            if self._children.get(child_id) is child:
                del self._children[child_id]
            if isinstance(exc, asyncio.CancelledError):
                started.cancel()
                raise
            if not started.done():
                started.set_exception(exc)
            return
        finally:
            if child.task is asyncio.current_task():
                child.task = None
        if self._children.get(child_id) is not child or started.done():
            if self._children.get(child_id) is child:
                del self._children[child_id]
            await stop_owned_actor(ref)  # terminated, or its starter gave up, while opening
            return
        child.ref = ref
        started.set_result(ref)

    async def _start_retrying(self, child: _Child) -> ActorRef[Any]:
        """The first start under the child's policy (``StartChild(retry=True)``): a failed
        attempt is retried after the policy's delay, counted in its restart intensity. A
        fatal error is raised as it is; past the intensity, ``GaveUpError`` (from the last
        failure) is, and nobody else is told: the starter has the error."""
        child_id = child.spec.child_id
        policy = child.spec.policy
        attempt = 0
        while True:
            try:
                return await self._open(child.spec, child.generation, None, attempt)
            except Exception as exc:
                if policy.classifier(exc).kind is Kind.FATAL:
                    raise  # as it is: HandshakeRejectedError, not GaveUpError
                decision, child.state = policy.on_failure(child.state, exc, self._clock())
                if isinstance(decision, Escalate):
                    error = GaveUpError(f"gave up on connection {child_id}: {decision.reason}")
                    logger.warning("supervisor: %s", error)
                    raise error from exc
                if not isinstance(decision, Restart):
                    raise  # Ignore: a temporary child is not restarted
                delay, attempt = decision.delay, decision.attempt
                logger.info(
                    "supervisor: first connection of %s failed; retrying in %.3f s "
                    "(attempt %d): %s",
                    child_id,
                    delay,
                    attempt,
                    decision.verdict.reason,
                )
            child.generation += 1  # reports of the failed attempt's actor are stale
            await asyncio.sleep(delay)

    async def _open(
        self, spec: ChildSpec, generation: int, down_since: float | None, attempt: int
    ) -> ActorRef[Any]:
        """One incarnation, started and opened by the child's owner (``OpenChild``). This
        task being cancelled cancels ``reply``, which tells the owner to stop the opening."""
        reply: asyncio.Future[ActorRef[Any]] = asyncio.get_running_loop().create_future()
        spec.owner.tell(
            OpenChild(
                child_id=spec.child_id,
                generation=generation,
                down_since=down_since,
                attempt=attempt,
                reply=reply,
            )
        )
        return await reply

    async def _terminate(self, child_id: str) -> None:
        child = self._children.pop(child_id, None)
        if child is None:
            return
        await self._halt(child)

    async def _halt(self, child: _Child) -> None:
        """Cancel the child's restart task and stop its current incarnation."""
        task, child.task = child.task, None
        await cancel_and_wait(task)
        ref, child.ref = child.ref, None
        if ref is not None:
            await stop_owned_actor(ref)

    def _failed(self, child: _Child, error: BaseException, *, served: bool = False) -> None:
        now = self._clock()
        child.last_error = error
        if child.down_since is None:
            child.down_since = now
        decision, child.state = child.spec.policy.on_failure(
            child.state, error, now, served=served
        )
        match decision:
            case Restart(delay=delay, verdict=verdict, attempt=attempt):
                logger.info(
                    "supervisor: restarting %s in %.3f s (attempt %d): %s",
                    child.spec.child_id,
                    delay,
                    attempt,
                    verdict.reason,
                )
                self._schedule(child, delay, attempt)
                self._restart_siblings(child, now)
            case Escalate(reason=reason, error=cause):
                self._escalate(child, reason, cause)
            case Ignore(reason=reason):
                logger.info("supervisor: %s not restarted: %s", child.spec.child_id, reason)
                self._children.pop(child.spec.child_id, None)
                self._schedule_stop(child)
                # Its owner must not wait for a restart that will not come.
                ended = GaveUpError(f"connection {child.spec.child_id} ended: {reason}")
                ended.__cause__ = error
                report = ChildGaveUp(child_id=child.spec.child_id, reason=reason, error=ended)
                for listener in self._listeners:
                    tell_quietly(listener, report)

    def _restart_siblings(self, failed: _Child, now: float) -> None:
        if self._strategy is Strategy.ONE_FOR_ONE:
            return
        ids = children_to_restart(self._strategy, list(self._children), failed.spec.child_id)
        for cid in ids:
            sibling = self._children[cid]
            if sibling is failed:
                continue
            decision, sibling.state = sibling.spec.policy.on_sibling_restart(sibling.state, now)
            if isinstance(decision, Restart):
                sibling.down_since = now
                self._schedule(sibling, decision.delay, decision.attempt)
            else:
                self._children.pop(cid, None)
                self._schedule_stop(sibling)

    def _schedule(self, child: _Child, delay: float, attempt: int) -> None:
        old_task = child.task
        child.generation += 1
        child.task = asyncio.get_running_loop().create_task(
            self._restart(child, old_task, child.generation, delay, attempt),
            name=f"networkpype-restart-{child.spec.child_id}",
        )

    def _schedule_stop(self, child: _Child) -> None:
        """Stop a child that is no longer listed; the task is owned by ``_stopping``."""
        child.generation += 1
        old_task, child.task = child.task, None
        task = asyncio.get_running_loop().create_task(
            self._stop_incarnation(child, old_task), name=f"networkpype-stop-{child.spec.child_id}"
        )
        if self._stopping is None:
            self._stopping = set()
        self._stopping.add(task)
        task.add_done_callback(self._stop_ended)

    def _stop_ended(self, task: asyncio.Task[None]) -> None:
        stopping = self._stopping
        if stopping is not None:
            stopping.discard(task)
            if not stopping:
                self._stopping = None

    async def _stop_incarnation(self, child: _Child, old_task: asyncio.Task[None] | None) -> None:
        await cancel_and_wait(old_task)
        ref, child.ref = child.ref, None
        if ref is not None:
            await stop_owned_actor(ref)  # taken from child.ref: nobody else will stop it

    async def _restart(
        self,
        child: _Child,
        old_task: asyncio.Task[None] | None,
        generation: int,
        delay: float,
        attempt: int,
    ) -> None:
        # The old incarnation is fully stopped before the new one opens: they may share a
        # socket holder, and two readers must never feed the consumer at once.
        await self._stop_incarnation(child, old_task)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            ref = await self._open(child.spec, generation, child.down_since, attempt)
        except Exception as exc:
            if child.generation == generation:
                tell_quietly(
                    self.actor_ref,
                    SocketFailed(
                        connection_id=child.spec.child_id, error=exc, generation=generation
                    ),
                )
            return
        if child.generation != generation or self._children.get(child.spec.child_id) is not child:
            await stop_owned_actor(ref)  # superseded while opening
            return
        child.ref = ref
        child.down_since = None
        child.restarts += 1
        for listener in self._listeners:
            tell_quietly(
                listener, ChildRestarted(child_id=child.spec.child_id, ref=ref, attempt=attempt)
            )

    def _escalate(self, child: _Child, reason: str, cause: BaseException | None) -> None:
        child_id = child.spec.child_id
        error = GaveUpError(f"gave up on connection {child_id}: {reason}")
        error.__cause__ = cause
        logger.warning("supervisor: %s", error)
        self._children.pop(child_id, None)
        self._schedule_stop(child)
        report = ChildGaveUp(child_id=child_id, reason=reason, error=error)
        for listener in self._listeners:
            tell_quietly(listener, report)
        if self._parent is not None:
            tell_quietly(self._parent, report)
        if self._on_escalate is not None:
            try:
                self._on_escalate(child_id, error)
            except Exception:
                logger.exception("supervisor: on_escalate callback failed")
