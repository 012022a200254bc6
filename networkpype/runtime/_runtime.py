"""pykka actors whose inboxes are served by asyncio tasks.

An :class:`AsyncioActor` is a ``pykka.Actor``: ``start()``, ``ActorRef.tell/ask/stop``, proxies,
``ActorRegistry`` and the ``on_start/on_stop/on_failure`` hooks keep pykka's semantics (pykka's
own test-suite runs against this runtime). What changes is where the actor runs: its inbox is
served by a task on one event loop, one task at a time, which exists only while messages wait
(an idle actor holds no task, no queue: the put that finds it idle starts one),

- the loop running in the thread that calls ``start()`` (so loop code starts actors beside its
  own tasks; they are cancelled, and stop cleanly, when that loop shuts down: the idle ones by
  the loop's one keeper task, ``AsyncioActor-keeper``), or
- when that thread runs no loop, the library's :class:`LoopThread`, a daemon thread started on
  first use whose actors are stopped at interpreter exit.

Handlers (``on_receive``, methods called through a proxy, and the hooks) may be ``async def``:
the actor awaits the coroutine before replying. Like any actor, it handles one message at a time,
so a handler that awaits holds up that actor's inbox (not the loop); a *synchronous* handler that
blocks holds up every actor and task on the loop.

Nothing on a loop ever blocks on a future: :meth:`AsyncioFuture.get` on a thread running a loop
raises :class:`~networkpype.protocol.errors.BlockingCallError` unless the result is ready, so
``ref.ask(msg)`` there is an error; write ``await ref.ask(msg, block=False)`` and
``await stop_actor(ref)``. Synchronous code on other threads blocks as with pykka's threads.
pykka's blocking conveniences are refused on a loop for the same reason: ``ref.stop()``,
``ActorRegistry.stop_all()`` (use :func:`stop_actor`, :func:`stop_all_actors`) and proxy
attribute assignment (``proxy.x = 1``; ask a ``ProxySetAttr`` or call a setter method).

An actor only runs while its loop runs: a thread that drives a loop piecemeal
(``run_until_complete``) must not block on replies from that loop's actors in between.

This module holds :class:`AsyncioActor` and re-exports the rest of the runtime from private
modules: ``_future`` (:class:`AsyncioFuture`), ``_inbox`` (the actor's inbox), ``_loop_thread``
(:class:`LoopThread` and the library's loop) and ``_helpers`` (:func:`stop_actor`,
:func:`stop_owned_actor` for cleanup paths, and friends).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import threading
from collections.abc import Awaitable
from types import CoroutineType, TracebackType
from typing import Any

import pykka
from pykka import ActorDeadError, ActorRegistry

from networkpype.runtime._future import AsyncioFuture, _await_future, _running_loop
from networkpype.runtime._helpers import (
    stop_actor,
    stop_all_actors,
    stop_owned_actor,
    tell_quietly,
)
from networkpype.runtime._inbox import _Inbox, _reply_dead
from networkpype.runtime._loop_thread import (
    LoopThread,
    _loop_actors,
    get_loop_thread,
    get_runtime_loop,
    run_coroutine,
    shutdown,
)
from networkpype.runtime._pykka_internals import PYKKA_LOGGER_NAME, ActorInbox, ActorStop

__all__ = [
    "AsyncioActor",
    "AsyncioFuture",
    "LoopThread",
    "get_loop_thread",
    "get_runtime_loop",
    "run_coroutine",
    "shutdown",
    "stop_actor",
    "stop_all_actors",
    "stop_owned_actor",
    "tell_quietly",
]

# Records that pykka's own actor loop would emit go to pykka's logger in pykka's words.
_pykka_logger = logging.getLogger(PYKKA_LOGGER_NAME)

_task_numbers = itertools.count()


_flag_lock = threading.Lock()


class _StoppedFlag(threading.Event):
    """``threading.Event`` semantics for ``actor_stopped``, with the Condition made only for
    a thread that actually waits (almost none do: the flag is mostly read)."""

    # Slots: threading.Event's instance dict is then never made (one per actor).
    __slots__ = ("_event", "_set")

    def __init__(self) -> None:  # no super().__init__(): that is the part made lazily
        self._set = False
        self._event: threading.Event | None = None

    def __repr__(self) -> str:  # threading.Event's reads the Condition it never made
        status = "set" if self._set else "unset"
        return f"<{type(self).__module__}.{type(self).__qualname__} at {id(self):#x}: {status}>"

    def _at_fork_reinit(self) -> None:  # threading.Event's reinitialises that Condition too
        self._event = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with _flag_lock:
            self._set = True
            event = self._event
        if event is not None:
            event.set()

    def clear(self) -> None:
        with _flag_lock:
            self._set = False
            if self._event is not None:
                self._event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        with _flag_lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


class AsyncioActor(pykka.Actor):
    """A ``pykka.Actor`` served by a task on an asyncio event loop.

    ``start()`` runs the actor on the loop running in the calling thread, or on the library's
    :class:`LoopThread` when the calling thread runs none. Its hooks and handlers run on that
    loop's thread and may be coroutine functions; the actor awaits them before replying or
    moving on, handling one message at a time.

    Cancelling the actor's task (``_actor_task`` while it serves a message; its loop shutting
    down, which stops the idle actors too, a deadline passing) stops the actor:
    ``on_stop`` runs, messages left in the inbox get ``ActorDeadError``, and the cancellation
    propagates. A ``BaseException`` other than cancellation raised by a handler stops every actor,
    as in pykka.
    """

    actor_inbox: _Inbox
    _actor_task: asyncio.Task[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # pykka gives every actor a threading.Event (a Condition, a lock and a deque: about
        # 1.2 KiB); the flag below makes the blocking part only when a thread waits on it.
        stopped = _StoppedFlag()
        self.actor_stopped = stopped
        self.actor_ref.actor_stopped = stopped

    # pykka types these hooks as returning None; here they may also be coroutine functions.
    # (Widening the return type is exactly what pykka's signature cannot express, hence the
    # ignores; subclasses of AsyncioActor type-check their `async def on_stop` against these.)
    def on_start(self) -> Awaitable[None] | None:  # type: ignore[override]
        """Run before the first message, on the actor's loop; may be ``async def``.

        If it raises, the error is logged and the actor stops (``on_stop`` is not called)."""
        return None

    def on_stop(self) -> Awaitable[None] | None:  # type: ignore[override]
        """Run once when the actor stops normally or is cancelled; may be ``async def``."""
        return None

    def on_failure(  # type: ignore[override]
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Awaitable[None] | None:
        """Run after a told message's handler raised (the actor is stopping; ``on_stop`` is not
        called); may be ``async def``."""
        return None

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        return _Inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return AsyncioFuture()

    def _start_actor_loop(self) -> None:
        loop = _running_loop()
        if loop is not None:
            self._spawn_actor_task(loop)
            return
        loop = get_runtime_loop()
        try:
            loop.call_soon_threadsafe(self._spawn_actor_task, loop)
        except RuntimeError as error:  # the loop thread was shut down concurrently
            ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()
            msg = f"{self} cannot start: the runtime loop is shut down"
            raise ActorDeadError(msg) from error

    def _spawn_actor_task(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the actor on ``loop`` (on its thread): its first task runs ``on_start``."""
        self.actor_inbox.bind(loop, self.actor_ref, self)
        _loop_actors.add(loop, self)
        self._serve(first=True)

    def _serve(self, first: bool = False) -> None:
        """Start a task that serves the inbox until it is empty (the inbox calls this when a
        put finds it idle): an idle actor holds no task."""
        name = f"{type(self).__name__}-{next(_task_numbers)}"
        loop = self.actor_inbox._loop
        assert loop is not None
        self._actor_task = loop.create_task(self._actor_loop_async(first), name=name)

    def _actor_loop(self) -> None:
        msg = "AsyncioActor's loop is a coroutine run by its event loop; call start()"
        raise NotImplementedError(msg)

    async def _actor_loop_async(self, first: bool = True) -> None:
        """pykka's ``_actor_loop`` (setup, message loop, teardown) as a coroutine, run from the
        start (``first``) and again by each put that finds the inbox idle: it returns when the
        inbox is empty, and tears the actor down only once it has stopped."""
        stopping_others: list[pykka.Future[bool]] | None = None
        idle = False
        try:
            if first:
                try:
                    started = self.on_start()
                    if started is not None:
                        await started
                except Exception:
                    self._handle_failure(*sys.exc_info())
                started = None  # not kept in this frame while the actor serves
            take = self.actor_inbox.take
            is_stopped = self.actor_stopped.is_set
            while not is_stopped():
                envelope = take()
                if envelope is None:  # the inbox is empty: the next put serves it again
                    loop = self.actor_inbox._loop
                    if loop is not None and _loop_actors.closing(loop):
                        await self._stop_async()  # its loop shuts down: stop, not idle
                        continue
                    idle = True
                    self._actor_task = None  # this task ends: nothing of it is kept
                    return
                message, reply_to = envelope.message, envelope.reply_to
                try:
                    if isinstance(message, ActorStop):
                        await self._stop_async()
                        response = None
                    else:
                        response = self._handle_receive(message)
                        if isinstance(response, CoroutineType):
                            response = await response
                    if reply_to is not None:
                        reply_to.set(response)
                except (asyncio.CancelledError, GeneratorExit):
                    _reply_dead(self.actor_ref, envelope)
                    raise
                except Exception:
                    exc_info = sys.exc_info()
                    if reply_to is not None:
                        if isinstance(exc_info[1], ConnectionError):
                            # Expected (a venue's 429 or 1008, a link that dropped): the caller
                            # handles it; one line, not a traceback per reconnection.
                            _pykka_logger.debug(
                                "Exception returned from %s to caller: %r", self, exc_info[1]
                            )
                        else:
                            _pykka_logger.info(
                                "Exception returned from %s to caller:", self, exc_info=exc_info
                            )
                        reply_to.set_exception(exc_info)
                    else:
                        self._handle_failure(*exc_info)
                        try:
                            failed = self.on_failure(*exc_info)
                            if failed is not None:
                                await failed
                        except Exception:
                            self._handle_failure(*sys.exc_info())
                except BaseException as error:
                    # pykka: a BaseException (SystemExit, KeyboardInterrupt...) in one actor
                    # stops this actor and all others, and is not propagated further.
                    _pykka_logger.debug("%r in %s. Stopping all actors.", error, self)
                    # (pykka leaves this envelope's asker waiting forever; it is dead news.)
                    _reply_dead(self.actor_ref, envelope)
                    await self._stop_async()
                    stopping_others = ActorRegistry.stop_all(block=False)
        except asyncio.CancelledError:
            # Cancelled from outside: still a clean stop (on_stop, ActorDeadError to the
            # inbox), then the cancellation goes on.
            if not self.actor_stopped.is_set():
                await self._stop_async()
            raise
        finally:
            if not idle:
                self._teardown()
        for future in stopping_others or ():
            with contextlib.suppress(ActorDeadError):  # it stopped on its own meanwhile
                await _await_future(future)

    async def _stop_claimed(self) -> None:
        """Stop an idle actor whose inbox the caller claimed (its loop shutting down), as a
        cancelled serving task would: ``on_stop``, then ActorDeadError to the inbox."""
        try:
            if not self.actor_stopped.is_set():
                await self._stop_async()
        finally:
            self._teardown()

    async def _stop_async(self) -> None:
        """pykka's ``Actor._stop``, awaiting an async ``on_stop``."""
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        _pykka_logger.debug("Stopped %s", self)
        try:
            stopped = self.on_stop()
            if stopped is not None:
                await stopped
        except Exception:
            self._handle_failure(*sys.exc_info())

    def _teardown(self) -> None:
        if not self.actor_stopped.is_set():
            # Only reached if the loop itself broke (a bug, or GeneratorExit): make the actor
            # visibly dead rather than alive with nobody serving its inbox.
            ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()
        inbox = self.actor_inbox
        for envelope in inbox.close():
            _reply_dead(self.actor_ref, envelope)
        if inbox._loop is not None:
            _loop_actors.remove(inbox._loop, self)
