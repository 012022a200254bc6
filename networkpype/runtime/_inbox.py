"""The actor's inbox: envelopes put from any thread, served on the actor's loop by a task that
exists only while there are envelopes.

Also :func:`_reply_dead`, pykka's answer to an envelope no live actor will handle. Part of the
asyncio actor runtime (:mod:`networkpype.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Any, Protocol

from pykka import ActorDeadError, ActorRef

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


class _Served(Protocol):
    """The actor an inbox starts serving tasks for."""

    def _serve(self) -> None: ...


_lock = threading.Lock()
"""One lock for every inbox: held for a few operations, to make a put and a serving task's
going idle exclusive (an inbox of its own would cost every actor ~90 B)."""


class _Inbox:
    """The actor's mailbox: put from any thread, served on the actor's loop by a task that
    exists only while there are envelopes to serve.

    An idle actor holds no task and no queue: the put that finds the inbox idle makes the
    queue and starts a serving task (``actor._serve()``, on the loop's thread: directly from
    it, through ``call_soon_threadsafe`` from another); the serving task takes envelopes until
    none is left and then goes idle (``take()`` returns None). The FIFO order is the order of
    the puts, whatever the thread. Until ``bind()`` the inbox counts as served: the actor's
    start serves whatever was put before it.
    """

    __slots__ = ("_actor", "_actor_ref", "_closed", "_loop", "_queue", "_serving", "_thread_id")

    def __init__(self) -> None:
        # A deque (O(1) popleft for a backlog; ~600 B, a preallocated block) made by the put
        # that finds the inbox idle and dropped when the serving task goes idle.
        self._queue: deque[Envelope[Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = -1  # no thread has this id: every put is "foreign" until bind()
        self._serving = True  # a serving task exists or is due (the start's, until bind)
        self._closed = False
        self._actor_ref: ActorRef[Any] | None = None
        self._actor: _Served | None = None  # the actor itself, not a bound method: no object

    def bind(
        self, loop: asyncio.AbstractEventLoop, actor_ref: ActorRef[Any], actor: _Served
    ) -> None:
        """Attach to the loop whose thread calls this, before the first serving task starts;
        ``actor._serve()`` starts a serving task (called on that thread)."""
        self._loop = loop
        self._actor_ref = actor_ref
        self._actor = actor
        self._thread_id = _get_ident()

    def put(self, envelope: Envelope[Any], /) -> None:
        lock = _lock
        lock.acquire()
        closed = self._closed
        start = False
        if not closed:
            queue = self._queue
            if queue is None:
                queue = self._queue = deque()
            queue.append(envelope)
            if not self._serving:
                self._serving = start = True
        lock.release()
        if closed:
            assert self._actor_ref is not None
            _reply_dead(self._actor_ref, envelope)
        elif start:
            # Not serving, so bound.
            assert self._actor is not None
            assert self._loop is not None
            if _get_ident() == self._thread_id:
                self._actor._serve()
            else:
                # RuntimeError: the loop closed under a live actor; nothing will serve it any
                # more.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._actor._serve)

    def take(self) -> Envelope[Any] | None:
        """The oldest envelope, or None: then the inbox is idle, its serving task must end,
        and the next put starts another (serving task only)."""
        queue = self._queue
        if queue:
            return queue.popleft()  # only this task takes: non-empty stays non-empty
        with _lock:
            queue = self._queue
            if queue:  # put from another thread meanwhile
                return queue.popleft()
            self._queue = None
            self._serving = False
            return None

    def claim(self) -> bool:
        """Take an idle inbox over, so that no put starts a serving task: for a stop run by
        the caller (a loop shutting down). False when a task serves it or it is closed."""
        with _lock:
            if self._serving or self._closed:
                return False
            self._serving = True
            return True

    def get(self) -> Envelope[Any]:
        """Take the oldest envelope (pykka's inbox protocol; the runtime uses ``take``)."""
        envelope = self.take()
        if envelope is None:
            raise IndexError("the inbox is empty")
        return envelope

    def empty(self) -> bool:
        return not self._queue

    def close(self) -> list[Envelope[Any]]:
        """Refuse further envelopes (they get ActorDeadError) and return those left."""
        with _lock:
            self._closed = True
            left = list(self._queue or ())
            self._queue = None
            self._actor = None  # the actor may be collected
        return left
