"""The actor's inbox: envelopes put from any thread, served by one task on the actor's loop.

Also :func:`_reply_dead`, pykka's answer to an envelope no live actor will handle. Part of the
asyncio actor runtime (:mod:`networkpype.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Any

from pykka import ActorDeadError, ActorRef

from networkpype.runtime._future import _wake
from networkpype.runtime._pykka_internals import ActorStop, Envelope

__all__: list[str] = []

_get_ident = threading.get_ident


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
        # A deque (~600 B empty, a preallocated block) rather than a list (56 B): a list's
        # pop(0) makes a backlog quadratic (100k queued tells took 2.5 s to drain, not 0.2).
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
