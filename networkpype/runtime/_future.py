"""AsyncioFuture: a ``pykka.Future`` set from any thread and awaited from any loop.

Also :func:`_await_future`, which awaits any pykka future without blocking the running loop.
Part of the asyncio actor runtime; import the public names from :mod:`networkpype.runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sys
import threading
import time
from collections.abc import Generator
from typing import Any, Final, TypeVar

import pykka

from networkpype.protocol.errors import BlockingCallError
from networkpype.runtime._pykka_internals import GetHookFunc, OptExcInfo

__all__ = ["AsyncioFuture"]

T = TypeVar("T")

_running_loop = asyncio._get_running_loop  # the cheap "is a loop running here?" (None if not)

# How long one executor round may block while a future of a foreign type, or a get-hook whose
# inputs this module cannot see, is awaited. Bounds how long a cancelled await or a loop shutdown
# waits for a worker thread.
_EXECUTOR_SLICE: Final = 0.05


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
    """Complete ``waiter`` unless it is done already (it may have been cancelled); for
    ``loop.call_soon_threadsafe`` from another thread (exported as ``runtime.wake``)."""
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
