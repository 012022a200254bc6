"""pykka actors whose inboxes are served by asyncio tasks.

An :class:`AsyncioActor` is a ``pykka.Actor``: ``start()``, ``ActorRef.tell/ask/stop``, proxies,
``ActorRegistry`` and the ``on_start/on_stop/on_failure`` hooks keep pykka's semantics (pykka's
own test-suite runs against this runtime). What changes is where the actor runs: its inbox is
served by one task on one event loop,

- the loop running in the thread that calls ``start()`` (so loop code starts actors beside its
  own tasks; they are cancelled, and stop cleanly, when that loop shuts down), or
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
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import itertools
import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, TracebackType
from typing import Any, Final, TypeVar

import pykka
from pykka import ActorDeadError, ActorRef, ActorRegistry

from networkpype.actors._pykka_internals import (
    PYKKA_LOGGER_NAME,
    ActorInbox,
    ActorStop,
    Envelope,
    GetHookFunc,
    OptExcInfo,
)
from networkpype.protocol.errors import BlockingCallError

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
    "tell_quietly",
]

T = TypeVar("T")

logger = logging.getLogger(__name__)
# Records that pykka's own actor loop would emit go to pykka's logger in pykka's words.
_pykka_logger = logging.getLogger(PYKKA_LOGGER_NAME)

_get_ident = threading.get_ident
_running_loop = asyncio._get_running_loop  # the cheap "is a loop running here?" (None if not)

# How long one executor round may block while a future of a foreign type, or a get-hook whose
# inputs this module cannot see, is awaited. Bounds how long a cancelled await or a loop shutdown
# waits for a worker thread.
_EXECUTOR_SLICE: Final = 0.05
# Default deadline for stopping the library loop's actors at interpreter exit, in seconds.
_ATEXIT_TIMEOUT: Final = 5.0


class _Unset:
    pass


_UNSET: Final = _Unset()


class _PollState(threading.local):
    # The last AsyncioFuture whose non-blocking get() found no result on this thread: when a
    # get-hook (map/join/stop converter...) polled with timeout=0 raises Timeout, this says which
    # input to await before polling again.
    blocker: AsyncioFuture[Any] | None = None


_poll_state = _PollState()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _wake_all(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    here = _running_loop()
    for loop, waiter in waiters:
        if loop is here:
            if not waiter.done():
                waiter.set_result(None)
        else:
            # RuntimeError: that loop is closed, nobody is left there to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, waiter)


class AsyncioFuture(pykka.Future[T]):
    """A ``pykka.Future`` that may be set and read from any thread and awaited from any loop.

    - ``set()``/``set_exception()`` from any thread; a second one raises ``queue.Full``, as does
      setting a future that has a get hook (and ``set_get_hook`` on a set future).
    - ``await future`` works on any event loop in any thread and never blocks it, including for
      futures made by ``map``/``filter``/``join``/``reduce`` and ``ActorRef.stop(block=False)``.
    - ``get(timeout)`` on a thread that runs no event loop blocks up to ``timeout`` seconds
      (forever if ``None``) and raises ``pykka.Timeout`` after that.
    - ``get()`` on a thread running an event loop returns a ready result, but raises
      :class:`~networkpype.protocol.errors.BlockingCallError` instead of waiting (the result
      usually has to come from that very loop); ``get(timeout=0)`` is a non-blocking poll
      anywhere and raises ``pykka.Timeout`` if the result is not there yet.

    An exception set on the future is raised by every ``get()``/``await`` with its original
    traceback. The value is not copied: set immutable objects, or copies.
    """

    # One future is created per ask: slots and explicit acquire/release (cheaper than `with`
    # on a Lock) keep that cost low.
    __slots__ = (
        "_done",
        "_event",
        "_exc_info",
        "_hook",
        "_hook_result",
        "_lock",
        "_value",
        "_waiters",
    )

    def __init__(self) -> None:
        # pykka's Future.__init__ only initialises its own get-hook state, which this class
        # replaces (see _pykka_internals.FUTURE_METHODS_REPLACED), so it is not called.
        self._lock = threading.Lock()
        # Until set, _done is False; then _value or _exc_info holds the outcome.
        self._done = False
        self._value: Any = None
        self._exc_info: OptExcInfo | None = None
        # Created on demand: a threading.Event for blocking get()s on foreign threads, and
        # (loop, asyncio future) pairs for awaiting coroutines, each woken on its own loop.
        self._event: threading.Event | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] | None = None
        self._hook: GetHookFunc[T] | None = None
        self._hook_result: Any = _UNSET

    def get(self, *, timeout: float | None = None) -> T:
        """Return the value, or raise the exception, set on the future.

        ``timeout`` is in seconds; ``None`` waits forever, ``0`` only polls. Raises
        ``pykka.Timeout`` when it passes, and ``BlockingCallError`` rather than waiting at all on
        a thread that runs an event loop (``await`` the future there).
        """
        deadline: float | None = None
        while True:
            if self._hook is not None:
                return self._get_from_hook(
                    timeout if deadline is None else max(0.0, deadline - time.monotonic())
                )
            if self._done:
                return self._result()
            if timeout is not None and timeout <= 0:
                _poll_state.blocker = self
                msg = f"{timeout} seconds"
                raise pykka.Timeout(msg)
            if _running_loop() is not None:
                msg = (
                    "blocking get() of a pending future on a thread running an event loop would "
                    "block that loop (and may deadlock it): `await` the future instead, poll with "
                    "get(timeout=0), or call get() from another thread"
                )
                raise BlockingCallError(msg)
            if deadline is None and timeout is not None:
                deadline = time.monotonic() + timeout
            with self._lock:
                if self._done or self._hook is not None:
                    continue
                event = self._event
                if event is None:
                    event = self._event = threading.Event()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                _poll_state.blocker = self
                msg = f"{timeout} seconds"
                raise pykka.Timeout(msg)
            event.wait(remaining)

    def set(self, value: T | None = None) -> None:
        """Set the value; wakes every waiter on any thread or loop. A second set raises
        ``queue.Full``."""
        self._complete(value, None)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        """Set an exception (``sys.exc_info()`` of the exception being handled if ``exc_info`` is
        None) to be raised by ``get()``/``await``. Raises ``queue.Full`` if already set."""
        assert exc_info is None or len(exc_info) == 3
        self._complete(None, sys.exc_info() if exc_info is None else exc_info)

    def _complete(self, value: Any, exc_info: OptExcInfo | None) -> None:
        lock = self._lock
        lock.acquire()
        if self._done or self._hook is not None:
            lock.release()
            raise queue.Full
        self._value = value
        self._exc_info = exc_info
        self._done = True
        event, waiters, self._waiters = self._event, self._waiters, None
        lock.release()
        if event is not None:
            event.set()
        if waiters is not None:
            _wake_all(waiters)

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        """Make ``get(timeout)`` return ``func(timeout)`` (computed once, then reused).

        Raises ``queue.Full`` if a value is already set. Awaiting such a future polls ``func``
        with ``timeout=0`` and awaits the :class:`AsyncioFuture` it was waiting for; a hook
        blocked on anything else is run in the loop's default executor in short slices.
        """
        with self._lock:
            if self._done:
                raise queue.Full
            self._hook = func
            event, waiters, self._waiters = self._event, self._waiters, None
        # Wake waiters so they switch to the hook.
        if event is not None:
            event.set()
        if waiters is not None:
            _wake_all(waiters)

    def _result(self) -> T:
        exc_info = self._exc_info
        if exc_info is None:
            return self._value  # type: ignore[no-any-return]
        exc_type, exc_value, exc_traceback = exc_info
        assert exc_type is not None
        if exc_value is None:
            exc_value = exc_type()
        if exc_value.__traceback__ is not exc_traceback:
            raise exc_value.with_traceback(exc_traceback)
        raise exc_value

    def _get_from_hook(self, timeout: float | None) -> T:
        result = self._hook_result
        if result is _UNSET:
            assert self._hook is not None
            computed = self._hook(timeout)
            # Two threads racing here may both run the hook (pykka's own hooks are pure
            # functions of their input futures); the first result stored is the one kept.
            with self._lock:
                if self._hook_result is _UNSET:
                    self._hook_result = computed
                result = self._hook_result
        return result  # type: ignore[no-any-return]

    def _add_waiter(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None:
        """Register a waiter on the running loop; None if already set or hooked."""
        loop = asyncio.get_running_loop()
        entry = (loop, loop.create_future())
        lock = self._lock
        lock.acquire()
        if self._done or self._hook is not None:
            lock.release()
            return None
        if self._waiters is None:
            self._waiters = [entry]
        else:
            self._waiters.append(entry)
        lock.release()
        return entry

    def _forget_waiter(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]) -> None:
        # The await was cancelled: drop the waiter so a long-pending future does not pile them up.
        with self._lock:
            if self._waiters is not None and entry in self._waiters:
                self._waiters.remove(entry)

    def _wait(self) -> Generator[Any, None, None]:
        """Suspend the awaiting task until the future is set or gets a hook."""
        entry = self._add_waiter()
        if entry is not None:
            try:
                yield from entry[1]
            except BaseException:
                self._forget_waiter(entry)
                raise

    def __await__(self) -> Generator[Any, None, T]:
        if self._hook is None:
            if not self._done:
                # _wait() inlined: this is the path of every awaited ask.
                entry = self._add_waiter()
                if entry is not None:
                    try:
                        yield from entry[1]
                    except BaseException:
                        self._forget_waiter(entry)
                        raise
            if self._hook is None:
                if self._exc_info is None:
                    return self._value  # type: ignore[no-any-return]
                return self._result()
        return (yield from self._await_hook())

    __iter__ = __await__

    def _await_hook(self) -> Generator[Any, None, T]:
        while True:
            _poll_state.blocker = None
            try:
                return self._get_from_hook(0)
            except pykka.Timeout:
                blocker, _poll_state.blocker = _poll_state.blocker, None
            if blocker is None or blocker is self or blocker._hook is not None:
                return (yield from self._await_hook_in_executor())
            yield from blocker._wait()

    def _await_hook_in_executor(self) -> Generator[Any, None, T]:
        # The hook waits on something this module cannot await (a ThreadingFuture, a user hook):
        # let a worker thread block on it, in slices so that cancelling the await or shutting
        # the loop down never waits on a worker for long.
        loop = asyncio.get_running_loop()
        while True:
            try:
                return (
                    yield from loop.run_in_executor(
                        None, functools.partial(self._get_from_hook, _EXECUTOR_SLICE)
                    )
                )
            except pykka.Timeout:
                continue


async def _await_future(future: pykka.Future[T]) -> T:
    """Await any pykka future without blocking the running loop (bound it with
    ``asyncio.timeout``)."""
    if isinstance(future, AsyncioFuture):
        value: T = await future
        return value
    # A foreign future type (ThreadingFuture...): a worker thread blocks on it, in slices, so a
    # cancelled await leaves no worker blocked for long.
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await loop.run_in_executor(
                None, functools.partial(future.get, timeout=_EXECUTOR_SLICE)
            )
        except pykka.Timeout:
            continue


def _reply_dead(actor_ref: ActorRef[Any], envelope: Envelope[Any]) -> None:
    # pykka's teardown: a stop request left in a dead actor's inbox is answered (the actor *is*
    # stopped); anything else fails with ActorDeadError.
    reply_to = envelope.reply_to
    if reply_to is None:
        return
    if isinstance(envelope.message, ActorStop):
        reply_to.set(None)
    else:
        error = ActorDeadError(f"{actor_ref} stopped before handling the message")
        reply_to.set_exception((ActorDeadError, error, None))


class _Inbox:
    """The actor's mailbox: put from any thread, served by one task on the actor's loop.

    A put on the loop's thread appends and wakes the waiting task directly; a put from another
    thread appends (under a lock, against a concurrent close) and wakes it through
    ``call_soon_threadsafe``. The FIFO order is the order of the appends, whatever the thread.
    """

    __slots__ = ("_actor_ref", "_closed", "_lock", "_loop", "_queue", "_thread_id", "_waiter")

    def __init__(self) -> None:
        self._queue: deque[Envelope[Any]] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = -1  # no thread has this id: every put is "foreign" until bind()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._actor_ref: ActorRef[Any] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, actor_ref: ActorRef[Any]) -> None:
        """Attach to the loop whose thread calls this, before the serving task starts."""
        self._loop = loop
        self._actor_ref = actor_ref
        self._thread_id = _get_ident()

    def put(self, envelope: Envelope[Any], /) -> None:
        if _get_ident() == self._thread_id:
            if self._closed:
                assert self._actor_ref is not None
                _reply_dead(self._actor_ref, envelope)
                return
            self._queue.append(envelope)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return
        lock = self._lock
        lock.acquire()
        closed = self._closed
        if not closed:
            self._queue.append(envelope)
        lock.release()
        if closed:
            assert self._actor_ref is not None
            _reply_dead(self._actor_ref, envelope)
            return
        # The serving task publishes its waiter *before* re-checking the queue, so either it
        # sees this envelope or this put sees its waiter.
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            assert self._loop is not None
            # RuntimeError: the loop closed under a live actor; nothing will serve it any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_wake, waiter)

    def get(self) -> Envelope[Any]:
        """Take the oldest envelope; only the serving task calls this, when not ``empty()``."""
        return self._queue.popleft()

    def empty(self) -> bool:
        return not self._queue

    def waiter(self) -> asyncio.Future[None] | None:
        """A future set by the next put, or None if the inbox is not empty (serving task only;
        it clears ``_waiter`` once woken)."""
        assert self._loop is not None
        waiter = self._waiter = self._loop.create_future()
        # Published before this re-check, so a put from another thread either lands in the
        # queue before it or sees the waiter.
        if self._queue:
            self._waiter = None
            return None
        return waiter

    def close(self) -> list[Envelope[Any]]:
        """Refuse further envelopes (they get ActorDeadError) and return those left."""
        with self._lock:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
        return left


class _ActorTasks:
    """Strong references to every running actor task, in start order, per loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[asyncio.Task[None], AsyncioActor] = {}

    def add(self, task: asyncio.Task[None], actor: AsyncioActor) -> None:
        with self._lock:
            self._tasks[task] = actor
        task.add_done_callback(self._discard)

    def _discard(self, task: asyncio.Task[None]) -> None:
        with self._lock:
            self._tasks.pop(task, None)

    def on_loop(
        self, loop: asyncio.AbstractEventLoop
    ) -> list[tuple[asyncio.Task[None], AsyncioActor]]:
        with self._lock:
            return [(t, a) for t, a in self._tasks.items() if t.get_loop() is loop]


_actor_tasks = _ActorTasks()
_task_numbers = itertools.count()


class AsyncioActor(pykka.Actor):
    """A ``pykka.Actor`` served by a task on an asyncio event loop.

    ``start()`` runs the actor on the loop running in the calling thread, or on the library's
    :class:`LoopThread` when the calling thread runs none. Its hooks and handlers run on that
    loop's thread and may be coroutine functions; the actor awaits them before replying or
    moving on, handling one message at a time.

    Cancelling the actor's task (its loop shutting down, a deadline passing) stops the actor:
    ``on_stop`` runs, messages left in the inbox get ``ActorDeadError``, and the cancellation
    propagates. A ``BaseException`` other than cancellation raised by a handler stops every actor,
    as in pykka.
    """

    actor_inbox: _Inbox
    _actor_task: asyncio.Task[None] | None = None

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
        self.actor_inbox.bind(loop, self.actor_ref)
        name = f"{type(self).__name__}-{next(_task_numbers)}"
        task = loop.create_task(self._actor_loop_async(), name=name)
        self._actor_task = task
        _actor_tasks.add(task, self)

    def _actor_loop(self) -> None:
        msg = "AsyncioActor's loop is a coroutine run by its event loop; call start()"
        raise NotImplementedError(msg)

    async def _actor_loop_async(self) -> None:
        """pykka's ``_actor_loop`` (setup, message loop, teardown) as a coroutine."""
        stopping_others: list[pykka.Future[bool]] = []
        try:
            try:
                started = self.on_start()
                if started is not None:
                    await started
            except Exception:
                self._handle_failure(*sys.exc_info())
            inbox = self.actor_inbox
            pending = inbox._queue  # read directly: this loop is the hot path of every message
            is_stopped = self.actor_stopped.is_set
            while not is_stopped():
                if not pending:
                    waiter = inbox.waiter()
                    if waiter is not None:
                        try:
                            await waiter
                        finally:
                            inbox._waiter = None
                    continue  # re-check actor_stopped, as pykka's loop would
                envelope = pending.popleft()
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
            self._teardown()
        for future in stopping_others:
            with contextlib.suppress(ActorDeadError):  # it stopped on its own meanwhile
                await _await_future(future)

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
        for envelope in self.actor_inbox.close():
            _reply_dead(self.actor_ref, envelope)


# `timeout` mirrors ActorRef.stop(timeout=...), which this replaces in loop code.
def tell_quietly(ref: ActorRef[Any], message: Any) -> bool:
    """``ref.tell(message)``, or False when the actor is already dead.

    For reports from tasks that may outlive their recipient (a reader whose parent is being
    stopped): the report has nobody left to act on it, which is not an error.
    """
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


async def stop_actor(ref: ActorRef[Any], timeout: float | None = None) -> bool:  # noqa: ASYNC109
    """Stop the actor behind ``ref`` from loop code, without blocking the loop.

    Messages sent before are handled first, then ``on_stop`` runs. Returns True once the actor
    has stopped (also when a stop request was already queued), False if it was already dead or
    in ``on_stop``. Raises
    ``TimeoutError`` if that takes more than ``timeout`` seconds; the stop request stays queued.
    Works for actors on any loop, and for pykka's thread actors.
    """
    future = ref.ask(ActorStop(), block=False)
    try:
        async with asyncio.timeout(timeout):
            await _await_future(future)
    except ActorDeadError:
        return False
    return True


async def stop_all_actors() -> list[bool]:
    """Stop every registered actor, newest first, one after the other: the non-blocking
    ``ActorRegistry.stop_all()`` for loop code (bound it with ``asyncio.timeout``).

    Returns each :func:`stop_actor` result, newest actor first.
    """
    return [await stop_actor(ref) for ref in reversed(ActorRegistry.get_all())]


class LoopThread:
    """An event loop running on a daemon thread of its own, for hosts that run no loop.

    :func:`get_loop_thread` returns the library's one instance, whose loop serves every actor
    started from a thread without a running loop. All methods are thread-safe.
    """

    def __init__(self, name: str = "networkpype-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        # Coroutines submitted through run_coroutine, owned here until they finish.
        self._submitted: set[concurrent.futures.Future[Any]] = set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (``start()`` first). Schedule on it with ``call_soon_threadsafe``."""
        if self._loop is None:
            msg = f"{self.name} is not started"
            raise RuntimeError(msg)
        return self._loop

    def start(self) -> None:
        """Start the thread and return once its loop is running. Starting twice is an error."""
        with self._lock:
            if self._thread is not None:
                msg = f"{self.name} was already started"
                raise RuntimeError(msg)
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._ready.wait()
        if self._loop is None:
            msg = f"{self.name} failed to start its event loop"
            raise RuntimeError(msg)

    def _run(self) -> None:
        try:
            loop = asyncio.new_event_loop()
        except BaseException:
            self._ready.set()
            raise
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._ready.set)  # ready means running, not merely created
        try:
            loop.run_forever()
        finally:
            try:
                # Like asyncio.run: whatever is left (an actor spawned while shutting down)
                # is cancelled, so it stops cleanly instead of being destroyed pending.
                loop.run_until_complete(asyncio.sleep(0))  # run callbacks queued before stop()
                left = asyncio.all_tasks(loop)
                for task in left:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def run_coroutine(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on this loop; the returned future gives its result to any thread.

        The task is owned by this LoopThread until it finishes, and cancelled by ``shutdown``.
        Cancelling the returned future cancels the task. Do not block on the result from this
        loop's own thread (await the coroutine there instead).
        """
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        with self._lock:
            self._submitted.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._submitted.discard(future)

    def is_alive(self) -> bool:
        """True between ``start()`` and the end of ``shutdown()``."""
        return self._thread is not None and self._thread.is_alive()

    def shutdown(self, timeout: float = _ATEXIT_TIMEOUT) -> None:
        """Stop this loop's actors, newest first, then cancel its remaining tasks, stop the loop
        and join the thread, all within about ``timeout`` seconds.

        Actors that have not stopped by the deadline are cancelled (which still runs their
        ``on_stop``). Must not be called from the loop's own thread (``BlockingCallError``).
        Calling it on a stopped or never started LoopThread does nothing.
        """
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        if _get_ident() == thread.ident:
            msg = f"{self.name}.shutdown() cannot wait for its own thread; call it from another"
            raise BlockingCallError(msg)
        deadline = time.monotonic() + timeout
        try:
            stopping = asyncio.run_coroutine_threadsafe(self._stop_tasks(timeout), loop)
            stopping.result(timeout + 1.0)
        except concurrent.futures.TimeoutError:
            logger.warning("%s: tasks outlived the %.1f s shutdown deadline", self.name, timeout)
        except RuntimeError:  # the loop was closed already
            pass
        except Exception:  # shutting down goes on regardless; the record says what broke
            logger.exception("%s: stopping its actors failed", self.name)
        with contextlib.suppress(RuntimeError):  # closed already
            loop.call_soon_threadsafe(loop.stop)
        thread.join(max(0.1, deadline - time.monotonic()))

    async def _stop_tasks(self, budget: float) -> None:
        # Most of the budget for stopping actors in order, the rest for cancelling stragglers.
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(budget * 0.8):
                for _task, actor in reversed(_actor_tasks.on_loop(loop)):
                    await stop_actor(actor.actor_ref)
        except TimeoutError:
            pass
        this = asyncio.current_task()
        left = [task for task in asyncio.all_tasks(loop) if task is not this]
        for task in left:
            task.cancel()
        if left:
            _done, pending = await asyncio.wait(left, timeout=max(0.1, budget * 0.2))
            for task in pending:
                logger.warning("%s: task %s ignored cancellation", self.name, task.get_name())


_loop_thread: LoopThread | None = None
_loop_thread_lock = threading.Lock()
_atexit_registered = False


def get_loop_thread() -> LoopThread:
    """Return the library's loop thread, starting it (once per process, and again after
    :func:`shutdown`) on first use. Its actors are stopped at interpreter exit."""
    global _loop_thread, _atexit_registered
    with _loop_thread_lock:
        if _loop_thread is None or not _loop_thread.is_alive():
            _loop_thread = LoopThread()
            _loop_thread.start()
            if not _atexit_registered:
                atexit.register(shutdown, _ATEXIT_TIMEOUT)
                _atexit_registered = True
        return _loop_thread


def get_runtime_loop() -> asyncio.AbstractEventLoop:
    """The library loop thread's event loop (started on first use)."""
    return get_loop_thread().loop


def run_coroutine(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run ``coro`` on the library's loop thread: the bridge for synchronous hosts.

    ``run_coroutine(main()).result(timeout)`` blocks the calling thread, so never call
    ``.result()`` from that loop's own thread.
    """
    return get_loop_thread().run_coroutine(coro)


def shutdown(timeout: float = _ATEXIT_TIMEOUT) -> None:
    """Stop the library's loop thread (see :meth:`LoopThread.shutdown`); a later start of an
    actor from a thread without a loop starts a fresh one. Registered with ``atexit``."""
    global _loop_thread
    with _loop_thread_lock:
        loop_thread, _loop_thread = _loop_thread, None
    if loop_thread is not None:
        loop_thread.shutdown(timeout)
