"""LoopThread: an event loop on a daemon thread, for actors started from threads without one.

Also the registry of live actors per loop (:data:`_loop_actors`), whose keeper task stops the
idle ones when the loop shuts down and which a loop thread's shutdown stops in reverse start
order, and the library's one loop thread
(:func:`get_loop_thread`, :func:`run_coroutine`, :func:`shutdown`). Part of the asyncio actor
runtime; import the public names from :mod:`networkpype.runtime`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

from networkpype.protocol.errors import BlockingCallError
from networkpype.runtime._helpers import stop_actor

if TYPE_CHECKING:
    from networkpype.runtime._runtime import AsyncioActor

__all__ = [
    "LoopThread",
    "get_loop_thread",
    "get_runtime_loop",
    "run_coroutine",
    "shutdown",
]

T = TypeVar("T")

# The runtime's records keep the logger name of the public module they are documented under.
logger = logging.getLogger("networkpype.runtime")

_get_ident = threading.get_ident

# Default deadline for stopping the library loop's actors at interpreter exit, in seconds.
_ATEXIT_TIMEOUT: Final = 5.0


class _Keeper:
    """The live actors of one loop, in start order, and the task that stops them when the
    loop shuts down."""

    __slots__ = ("actors", "closing", "done", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.actors: dict[AsyncioActor, None] = {}
        self.closing = False  # cancelled: the loop is shutting down
        self.done: asyncio.Future[None] = loop.create_future()  # set when the last one leaves
        # Named as the actor tasks are (after the class), not as a library task.
        self.task = loop.create_task(self._keep(), name="AsyncioActor-keeper")

    async def _keep(self) -> None:
        try:
            await self.done
        except asyncio.CancelledError:
            # The loop shuts down (asyncio.run cancels every task): an idle actor has no task
            # to cancel, so it is stopped here, as a cancelled actor task stops its own.
            self.closing = True
            stops: list[Any] = []
            for actor in list(self.actors):
                if actor.actor_inbox.claim():
                    stops.append(actor._stop_claimed())
                else:
                    task = actor._actor_task
                    if task is not None and not task.done():
                        if not task.cancelling():  # one started since the loop's round
                            task.cancel()
                        stops.append(task)
            await asyncio.gather(*stops, return_exceptions=True)
            raise


class _LoopActors:
    """Every live actor per loop, in start order. An actor holds a task only while its inbox
    has envelopes, so a loop's shutdown, which cancels tasks, would miss the idle ones: each
    loop with live actors runs one task, its keeper, that stops them when cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Keeper] = (
            weakref.WeakKeyDictionary()
        )

    def add(self, loop: asyncio.AbstractEventLoop, actor: AsyncioActor) -> None:
        """Register ``actor``, on ``loop``'s thread."""
        with self._lock:
            keeper = self._keepers.get(loop)
            if keeper is None:
                keeper = self._keepers[loop] = _Keeper(loop)
            keeper.actors[actor] = None

    def remove(self, loop: asyncio.AbstractEventLoop, actor: AsyncioActor) -> None:
        """Forget a stopped ``actor``, on ``loop``'s thread; the last one ends the keeper."""
        with self._lock:
            keeper = self._keepers.get(loop)
            if keeper is None or actor not in keeper.actors:
                return
            del keeper.actors[actor]
            if not keeper.actors and not keeper.closing:
                del self._keepers[loop]
                keeper.done.set_result(None)

    def closing(self, loop: asyncio.AbstractEventLoop) -> bool:
        """True once ``loop``'s shutdown has begun: an actor going idle then stops."""
        keeper = self._keepers.get(loop)
        return keeper is not None and keeper.closing

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> list[AsyncioActor]:
        """``loop``'s live actors, in start order."""
        with self._lock:
            keeper = self._keepers.get(loop)
            return list(keeper.actors) if keeper is not None else []


_loop_actors = _LoopActors()


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
                for actor in reversed(_loop_actors.on_loop(loop)):
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
