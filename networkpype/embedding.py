"""Blocking facades for hosts that run no event loop: plain threads, pykka ``ThreadingActor``\\s.

:class:`SyncNetworkPype` drives one supervised WebSocket (a ``WebSocketManager``) and
:class:`SyncShardedNetworkPype` topic subscriptions spread over several (a
``ShardedWebSocketManager``); two classes because their commands differ. Both build the
``NetworkPype`` and its manager on an event-loop thread and give the host blocking calls::

    with SyncNetworkPype() as pype:              # any thread but a loop's
        pype.connect(url)
        pype.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", ...}))
        for message in pype.messages(timeout=5.0):
            ...

Lifecycle. ``start()`` (or ``with``, or the first command) starts the facade; ``stop()`` ends
it for good (make a new instance to start again).

Threads. Every method may be called from any thread that runs no event loop, several at once.
A blocking call from a thread that runs one (the loop thread itself, inside an ``on_escalate``
callback, an ``AsyncioActor``'s handler) raises ``BlockingCallError`` instead of deadlocking;
``get_nowait()`` and ``get(timeout=0)`` poll and are allowed anywhere.

The loop. By default the library's loop thread (:func:`networkpype.actors.get_loop_thread`) is
started or reused, and is left running after ``stop()`` for the next user (it stops at
interpreter exit, or with :func:`networkpype.actors.shutdown`). With ``own_loop_thread=True``
the facade starts a loop thread of its own and ``stop()`` shuts it down: nothing of ours is
left, not even a thread.

Timeouts, in seconds. Every command waits at most its ``timeout`` (default: the
``call_timeout`` given to the constructor, 10 s); past it the command is cancelled on the loop
(whether it took effect is then unknown) and ``TimeoutError`` is raised. ``get(timeout=None)``
is the exception: it waits until a message arrives or the stream ends.

Reading. A consumer task on the loop takes each message from the manager (post-processed, and
the lifecycle events of ``networkpype.protocol.events`` when ``events=True``) and puts it in a
thread-safe queue of ``max_pending`` items. When that queue is full the task stops taking, so
the manager's own queue fills and its ``overflow`` policy applies (``"block"``, the default:
the socket is no longer read and nothing is lost). ``get()`` returns None once the stream has
ended (``stop()``) and been drained, ``get_nowait()`` raises ``queue.Empty`` when nothing is
waiting; when the supervisor gave up, every reader gets the
``GaveUpError`` (a ``ConnectionError``) after the messages received before it, as a
``WebSocketManager`` consumer would.

Supervision as a subsystem: ``parent=`` (an ``ActorRef``, any pykka actor: a
``ThreadingActor`` of the host's) is told ``ChildGaveUp`` when a connection is given up on;
``on_escalate(connection_id, error)`` is the callback form, called on the loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import msgspec
from pykka import ActorRef

from networkpype.actors.runtime import LoopThread, get_loop_thread, stop_actor, tell_quietly
from networkpype.facade import NetworkPype
from networkpype.protocol.errors import (
    BlockingCallError,
    ConfigurationError,
    ConsumerOverflowError,
    GaveUpError,
    NotConnectedError,
)
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.protocol.messages import ChildGaveUp
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.websocket.codec import BinanceCodec, TopicCodec
from networkpype.websocket.connection import DEFAULT_MAX_MSG_SIZE, WebSocketConnection
from networkpype.websocket.decoding import DecoderSpec
from networkpype.websocket.manager import DEFAULT_MAX_QUEUE, WebSocketManager
from networkpype.websocket.response import WebSocketResponse
from networkpype.websocket.sharded import (
    ShardedStatistics,
    ShardedWebSocketManager,
    SubscribeResult,
)

if TYPE_CHECKING:
    from networkpype.actors.manager import OnConnect
    from networkpype.auth import Auth
    from networkpype.supervisor.policy import RestartPolicy
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
    from networkpype.websocket.request import WebSocketRequest

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_MAX_PENDING",
    "SyncNetworkPype",
    "SyncShardedNetworkPype",
    "SyncStatistics",
    "SyncStream",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CALL_TIMEOUT: Final = 10.0
"""Seconds a command waits for the loop when no ``timeout`` is given."""
DEFAULT_MAX_PENDING: Final = 1_000
"""Messages held for the host's reading threads before the consumer task stops taking."""
_STOP_TIMEOUT: Final = 5.0
_ENDED: Final = object()


def _refuse_on_a_loop(what: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise BlockingCallError(
        f"{what}() blocks, and this thread runs an event loop (the networkpype loop thread, "
        "an on_escalate callback or an actor handler?): blocking here would stall that loop, "
        "or deadlock it; call it from another thread, or use the async WebSocketManager API"
    )


# -- the hand-off from the loop to the host's threads ----------------------------------------


class _Raise:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _HandOff:
    """Bounded FIFO from one producer task on ``loop`` to any number of reader threads.

    Not a ``queue.Queue``: the producer must wait for room without blocking its loop (a
    reader that makes room wakes it through the loop), and closing must wake every reader.
    """

    def __init__(self, maxsize: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if maxsize < 1:
            raise ConfigurationError(f"max_pending must be at least 1, got {maxsize}")
        self._maxsize = maxsize
        self._loop = loop  # set by bind() before the first put()
        self._items: deque[Any] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._room: asyncio.Future[None] | None = None  # the producer waiting for room
        self._closed = False
        self._error: BaseException | None = None
        self._traceback: TracebackType | None = None
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._items)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the producer's loop (once, before the first ``put``)."""
        self._loop = loop

    # loop side

    async def put(self, item: Any) -> None:
        """Append ``item``, waiting (on the loop) while full. Dropped once closed."""
        while True:
            with self._ready:
                if self._closed:
                    return
                if len(self._items) < self._maxsize:
                    self._items.append(item)
                    self._ready.notify()
                    return
                room = self._room = asyncio.get_running_loop().create_future()
            try:
                await room
            finally:
                self._room = None

    def put_error(self, error: BaseException) -> None:
        """Queue ``error`` to be raised, once, to the reader that reaches it."""
        with self._ready:
            self._items.append(_Raise(error))
            self._ready.notify()

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error``: raised to every reader once drained."""
        with self._ready:
            if not self._closed:
                self._error, self._traceback = error, error.__traceback__
            self._close_locked()

    def close(self) -> None:
        """End the stream: readers get what is queued, then None. Idempotent."""
        with self._ready:
            self._close_locked()

    def _close_locked(self) -> None:
        self._closed = True
        self._ready.notify_all()
        room, self._room = self._room, None
        if room is not None:
            self._wake_producer(room)

    def _wake_producer(self, room: asyncio.Future[None]) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to wake
            self._loop.call_soon_threadsafe(_wake, room)

    # reader side (any thread)

    def get(self, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._items:
                if self._closed:
                    return self._end()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no message within {timeout} s")
                self._ready.wait(remaining)
            item = self._items.popleft()
            self.delivered += 1
            room, self._room = self._room, None
        if room is not None:
            self._wake_producer(room)
        if type(item) is _Raise:
            raise item.error
        return item

    def _end(self) -> None:
        error = self._error
        if error is not None:
            raise error.with_traceback(self._traceback)


class SyncStream:
    """Blocking reads of one message stream, from any number of threads.

    Each message goes to exactly one reader. ``None`` marks the end of the stream (after
    ``stop()``, or an unsubscribed topic's stream): every later read returns None at once.
    """

    def __init__(self, handoff: _HandOff) -> None:
        self._handoff = handoff

    def get(self, timeout: float | None = None) -> Any:
        """The next message (a ``WebSocketResponse``, or an event when asked for), or None
        once the stream has ended and been drained.

        Waits up to ``timeout`` seconds (``None``: until a message arrives or the stream
        ends; ``0``: poll, allowed on any thread). Raises ``TimeoutError`` when it passes,
        ``GaveUpError`` once the supervisor gave up and everything before was read,
        ``BlockingCallError`` when a blocking wait is asked on a thread running an event loop.
        """
        if timeout is None or timeout > 0:
            _refuse_on_a_loop("get")
        return self._handoff.get(timeout)

    def get_nowait(self) -> Any:
        """The next message if one is waiting, None if the stream has ended. Raises
        ``queue.Empty`` when nothing is waiting, and what ``get()`` raises. Never blocks;
        allowed on any thread."""
        try:
            return self._handoff.get(0)
        except TimeoutError:
            raise queue.Empty from None

    def messages(self, timeout: float | None = None) -> Iterator[Any]:
        """Iterate until the stream ends; ``timeout`` (seconds) bounds the wait for each
        message (``TimeoutError``). Raises what ``get()`` raises."""
        while True:
            item = self.get(timeout)
            if item is None:
                return
            yield item

    def __iter__(self) -> Iterator[Any]:
        return self.messages()

    @property
    def pending(self) -> int:
        """Messages waiting to be read."""
        return len(self._handoff)

    @property
    def delivered(self) -> int:
        """Messages (and events) read so far."""
        return self._handoff.delivered


class SyncStatistics(msgspec.Struct, frozen=True):
    """A snapshot of a :class:`SyncNetworkPype`. ``restarts``: reconnections so far;
    ``subscriptions``: recorded (replayed) ones; ``*_in``/``*_out``: frames and bytes of the
    current connection; ``last_recv_time``: Unix time of the last data frame (0.0 before any);
    ``pending``: messages waiting for the host's readers; ``delivered``: messages read."""

    connected: bool
    restarts: int
    subscriptions: int
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int
    last_recv_time: float
    pending: int
    delivered: int


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


async def _new_connection(
    pype: NetworkPype, decoder: DecoderSpec, max_msg_size: int
) -> WebSocketConnection:
    # The factory makes connections on its shared session only inside a manager, and its
    # get_ws_manager() does not forward the supervision settings (parent, on_escalate,
    # restart_policy): take the connection of a fresh, never connected one. The factory
    # disconnects that one (a no-op) when the pype stops.
    return (
        await pype.factory.get_ws_manager(decoder=decoder, max_msg_size=max_msg_size)
    ).connection


async def _stop_throttler_actor(throttler: AsyncThrottler) -> None:
    # NetworkPype's default throttler is ours, but its actor outlives NetworkPype.stop() (it
    # "lives until its loop ends", and the library's loop thread does not end). AsyncThrottler
    # has no close(); a later use would start a fresh actor that takes the state over.
    ref = getattr(throttler, "_actor", None)
    if ref is not None:
        await stop_actor(ref)


class _SyncFacade:
    """The lifecycle, the loop thread, the commands' timeouts and the reading side."""

    _pype: NetworkPype | None = None
    _throttler: AsyncThrottler | None = None

    def __init__(
        self,
        *,
        events: bool,
        max_pending: int,
        call_timeout: float,
        own_loop_thread: bool,
    ) -> None:
        if not call_timeout > 0:
            raise ConfigurationError(f"call_timeout must be > 0 s, got {call_timeout}")
        self._events = events
        self._max_pending = max_pending
        self._call_timeout = call_timeout
        self._owns_loop_thread = own_loop_thread
        self._lock = threading.Lock()  # start()/stop() transitions
        self._phase = _Phase.NEW
        self._loop_thread: LoopThread | None = None
        self._main = _HandOff(max_pending)
        self._reader = SyncStream(self._main)
        self._pumps: set[asyncio.Task[None]] = set()  # touched on the loop only
        # How reading ended (loop only): None while it goes on, else the error or _ENDED.
        self._outcome: BaseException | object | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread the subsystem runs on (after ``start()``): schedule loop code on
        it with ``run_coroutine``."""
        if self._loop_thread is None:
            raise NotConnectedError(f"{type(self).__name__} is not started; call start()")
        return self._loop_thread

    def start(self, timeout: float | None = None) -> None:
        """Start (or reuse) the loop thread and build the subsystem on it. Idempotent.

        Raises ``NotConnectedError`` after ``stop()`` (make a new instance), ``TimeoutError``
        past ``timeout`` seconds, ``BlockingCallError`` on a thread running an event loop.
        """
        _refuse_on_a_loop("start")
        with self._lock:
            if self._phase is _Phase.RUNNING:
                return
            if self._phase is _Phase.STOPPED:
                raise NotConnectedError(
                    f"{type(self).__name__} was stopped; it cannot start again: make a new one"
                )
            if self._owns_loop_thread:
                loop_thread = LoopThread(name="networkpype-embedded")
                loop_thread.start()
            else:
                loop_thread = get_loop_thread()
            self._main.bind(loop_thread.loop)
            try:
                self._run(loop_thread, "start", self._build, timeout)
            except BaseException:
                if self._owns_loop_thread:
                    loop_thread.shutdown(_STOP_TIMEOUT)
                raise
            self._loop_thread = loop_thread
            self._phase = _Phase.RUNNING
            logger.debug("%s started on %s", type(self).__name__, loop_thread.name)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop reading, disconnect, stop every actor and task of this subsystem and close
        its HTTP session, within about ``timeout`` seconds (default 5), from any state
        (mid-handshake, mid-backoff, readers blocked in ``get()``). Idempotent.

        Readers get what was already queued, then None. The library's loop thread stays for
        reuse; a thread of our own (``own_loop_thread=True``) is shut down and joined. Raises
        ``TimeoutError`` if the subsystem did not stop in time (with ``own_loop_thread``
        what is left is then cancelled with the loop), ``BlockingCallError`` on a thread
        running an event loop.
        """
        _refuse_on_a_loop("stop")
        deadline = time.monotonic() + timeout
        with self._lock:
            phase, self._phase = self._phase, _Phase.STOPPED
            loop_thread = self._loop_thread
            try:
                if phase is _Phase.RUNNING and loop_thread is not None:
                    self._run(loop_thread, "stop", self._teardown, timeout)
                    logger.debug("%s stopped", type(self).__name__)
            except TimeoutError:
                logger.warning(
                    "%s did not stop within %.1f s; what is left is cancelled",
                    type(self).__name__,
                    timeout,
                )
                raise
            finally:
                for handoff in self._handoffs():
                    handoff.close()
                if self._owns_loop_thread and loop_thread is not None:
                    loop_thread.shutdown(max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- reading ---------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Any:
        """The next message, or None once stopped and drained: see :meth:`SyncStream.get`."""
        return self._reader.get(timeout)

    def get_nowait(self) -> Any:
        """The next message if one is waiting: see :meth:`SyncStream.get_nowait`."""
        return self._reader.get_nowait()

    def messages(self, timeout: float | None = None) -> Iterator[Any]:
        """Iterate over the messages until ``stop()``: see :meth:`SyncStream.messages`."""
        return self._reader.messages(timeout)

    # -- for subclasses --------------------------------------------------------------------

    async def _build(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    def _handoffs(self) -> list[_HandOff]:
        return [self._main]

    async def _teardown(self) -> None:
        pumps = list(self._pumps)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        pype, self._pype = self._pype, None
        try:
            await self._disconnect()
        finally:
            if pype is not None:
                await pype.stop()
                if self._throttler is None:
                    await _stop_throttler_actor(pype.factory.throttler)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task owned by this facade (cancelled by ``stop()``)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    def _call(
        self, what: str, make: Callable[[], Coroutine[Any, Any, T]], timeout: float | None
    ) -> T:
        _refuse_on_a_loop(what)
        if self._phase is _Phase.NEW:
            self.start()
        loop_thread = self._loop_thread
        if self._phase is not _Phase.RUNNING or loop_thread is None:
            raise NotConnectedError(f"{what}(): {type(self).__name__} is stopped")
        return self._run(loop_thread, what, make, timeout)

    def _run(
        self,
        loop_thread: LoopThread,
        what: str,
        make: Callable[[], Coroutine[Any, Any, T]],
        timeout: float | None,
    ) -> T:
        seconds = self._call_timeout if timeout is None else timeout
        coro = make()
        try:
            future = loop_thread.run_coroutine(coro)
        except RuntimeError as error:  # the loop thread was shut down under us
            coro.close()
            raise NotConnectedError(f"{what}(): the event loop thread is shut down") from error
        done, _ = concurrent.futures.wait([future], seconds)
        if not done:
            future.cancel()
            raise TimeoutError(f"{what}() took more than {seconds} s and was cancelled")
        return future.result()

    async def _pump_into(
        self, source: Callable[[], Any], deliver: Callable[[Any], Awaitable[None]]
    ) -> None:
        """Take every item of ``source()`` (an async iterator factory) and ``deliver`` it;
        end every hand-off with the source's end or error."""
        try:
            while True:
                try:
                    async for item in source():
                        await deliver(item)
                except ConsumerOverflowError as error:  # overflow="error": told once, go on
                    self._main.put_error(error)
                    continue
                break
        except Exception as error:  # GaveUpError and the like: every reader gets it
            self._outcome = error
            for handoff in self._handoffs():
                handoff.fail(error)
        else:
            self._outcome = _ENDED
            for handoff in self._handoffs():
                handoff.close()

    def _end_like_the_others(self, handoff: _HandOff) -> None:
        """A hand-off opened after reading ended ends the same way (loop only)."""
        if isinstance(self._outcome, BaseException):
            handoff.fail(self._outcome)
        elif self._outcome is not None:
            handoff.close()


class SyncNetworkPype(_SyncFacade):
    """One supervised WebSocket (a ``WebSocketManager``) driven from synchronous code.

    See the module docstring for threads, timeouts and reading. ``throttler``, ``auth`` and
    the processors are ``NetworkPype``'s; ``restart_policy``, ``on_connect``, ``on_escalate``
    and ``parent`` are ``WebSocketManager``'s supervision settings; ``decoder``,
    ``max_msg_size``, ``max_queue`` and ``overflow`` the manager's decoding and queue.
    ``events=True`` has ``get()`` return the lifecycle events too, in order with the data.
    ``max_pending`` bounds the messages held for the host's readers. ``call_timeout`` is the
    default timeout of the commands, in seconds.

    Usage: ``start()`` (or ``with``), ``connect(url)`` once, then ``subscribe``/``send``/
    ``get`` from any threads, and ``stop()``. An instance connects once; after ``stop()``
    make a new one.
    """

    def __init__(
        self,
        throttler: AsyncThrottler | None = None,
        auth: Auth | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        *,
        restart_policy: RestartPolicy | None = None,
        on_connect: OnConnect | None = None,
        on_escalate: EscalationHandler | None = None,
        parent: ActorRef[Any] | None = None,
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        overflow: str = "block",
        events: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        own_loop_thread: bool = False,
    ) -> None:
        super().__init__(
            events=events,
            max_pending=max_pending,
            call_timeout=call_timeout,
            own_loop_thread=own_loop_thread,
        )
        self._throttler = throttler
        self._auth = auth
        self._pre_processors = list(ws_pre_processors or [])
        self._post_processors = list(ws_post_processors or [])
        self._manager_kwargs: dict[str, Any] = {
            "max_queue": max_queue,
            "overflow": overflow,
            "restart_policy": restart_policy,
            "on_connect": on_connect,
            "on_escalate": on_escalate,
            "parent": parent,
        }
        self._decoder = decoder
        self._max_msg_size = max_msg_size
        self._manager: WebSocketManager | None = None

    @property
    def manager(self) -> WebSocketManager:
        """The ``WebSocketManager`` (after ``start()``), for loop code: its methods must be
        awaited on :attr:`loop_thread`."""
        if self._manager is None:
            raise NotConnectedError("SyncNetworkPype is not started; call start()")
        return self._manager

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open (False during a reconnection)."""
        return self._manager is not None and self._manager.connected

    async def _build(self) -> None:
        pype = NetworkPype(self._throttler, self._auth, self._pre_processors, self._post_processors)
        try:
            connection = await _new_connection(pype, self._decoder, self._max_msg_size)
        except BaseException:
            await pype.stop()
            raise
        self._pype = pype
        self._manager = WebSocketManager(
            connection,
            pype.factory.throttler,
            self._pre_processors,
            self._post_processors,
            pype.factory.auth,
            **self._manager_kwargs,
        )

    async def _disconnect(self) -> None:
        if self._manager is not None:
            await self._manager.disconnect()

    def connect(self, url: str, *, timeout: float | None = None, **connect_kwargs: Any) -> None:
        """Open the WebSocket (``WebSocketManager.connect``'s keyword arguments: liveness
        settings, headers...) and start reading; starts the facade first if needed.

        Raises the handshake errors of the error tree (the first connection is not retried),
        ``AlreadyConnectedError`` the second time, ``TimeoutError`` past ``timeout`` seconds.
        """

        async def connect() -> None:
            manager = self.manager
            await manager.connect(url, **connect_kwargs)
            events = self._events
            self._spawn(
                self._pump_into(lambda: manager.iter_messages(events=events), self._main.put),
                "networkpype-sync-reader",
            )

        self._call("connect", connect, timeout)

    def subscribe(self, request: WebSocketRequest, *, timeout: float | None = None) -> None:
        """``WebSocketManager.subscribe``: send and record ``request`` (replayed after every
        reconnection). Returns once it is written; raises ``NotConnectedError`` before
        ``connect()``, ``TimeoutError`` past ``timeout`` seconds."""
        self._call("subscribe", lambda: self.manager.subscribe(request), timeout)

    def unsubscribe(
        self,
        subscription: WebSocketRequest,
        request: WebSocketRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """``WebSocketManager.unsubscribe``: forget ``subscription`` (the object given to
        ``subscribe``) and send ``request`` when given. Raises ``KeyError`` for an unknown
        subscription, ``TimeoutError`` past ``timeout`` seconds."""
        self._call("unsubscribe", lambda: self.manager.unsubscribe(subscription, request), timeout)

    def send(self, request: WebSocketRequest, *, timeout: float | None = None) -> None:
        """``WebSocketManager.send``: pre-process, sign, throttle and send ``request`` (not
        recorded). Raises ``NotConnectedError`` while the connection is down, ``TimeoutError``
        past ``timeout`` seconds (a throttled send may wait for its rate limit)."""
        self._call("send", lambda: self.manager.send(request), timeout)

    def subscriptions(self, *, timeout: float | None = None) -> list[WebSocketRequest]:
        """The recorded subscriptions, in replay order."""
        return self._call("subscriptions", lambda: self.manager.subscriptions(), timeout)

    def statistics(self, *, timeout: float | None = None) -> SyncStatistics:
        """A :class:`SyncStatistics` snapshot, taken on the loop."""

        async def snapshot() -> SyncStatistics:
            manager = self.manager
            actor = manager.actor_ref
            restarts, subscriptions = (await actor.proxy().status()) if actor else (0, 0)
            connection = manager.connection
            return SyncStatistics(
                connected=connection.connected,
                restarts=restarts,
                subscriptions=subscriptions,
                messages_in=connection.messages_in,
                bytes_in=connection.bytes_in,
                messages_out=connection.messages_out,
                bytes_out=connection.bytes_out,
                last_recv_time=connection.last_recv_time,
                pending=len(self._main),
                delivered=self._main.delivered,
            )

        return self._call("statistics", snapshot, timeout)


class SyncShardedNetworkPype(_SyncFacade):
    """Topic subscriptions spread over supervised connections (a
    ``ShardedWebSocketManager``), driven from synchronous code.

    Arguments as :class:`SyncNetworkPype`; ``codec`` (default ``BinanceCodec()``) and
    ``sharded_kwargs`` (``max_topics_per_connection``, ``min_send_interval``,
    ``max_connection_attempts``, ``ack_timeout``, ``max_age``, ``dedup_key``...) are the
    ``ShardedWebSocketManager``'s. ``parent`` is told ``ChildGaveUp`` for each connection
    given up on (sent from the ``on_escalate`` hook).

    Reading: ``stream(topic)`` gives the messages of one topic (with its connection's gap
    events) in their own bounded queue; ``get()`` gives every message no stream claims (and
    every event when ``events=True``). The facade routes by ``codec.topic_of`` applied to
    the post-processed data. One consumer task feeds them all, so a full queue that nobody
    reads holds up the others: read every stream you open, and ``get()`` too when
    unclaimed messages can arrive (acknowledgements are matched before any queue).
    Reading starts at the first subscription.
    """

    def __init__(
        self,
        throttler: AsyncThrottler | None = None,
        auth: Auth | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        *,
        codec: TopicCodec | None = None,
        restart_policy: RestartPolicy | None = None,
        on_escalate: EscalationHandler | None = None,
        parent: ActorRef[Any] | None = None,
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        overflow: str = "block",
        events: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        own_loop_thread: bool = False,
        **sharded_kwargs: Any,
    ) -> None:
        super().__init__(
            events=events,
            max_pending=max_pending,
            call_timeout=call_timeout,
            own_loop_thread=own_loop_thread,
        )
        self._throttler = throttler
        self._auth = auth
        self._pre_processors = list(ws_pre_processors or [])
        self._post_processors = list(ws_post_processors or [])
        self._codec: TopicCodec = codec or BinanceCodec()
        self._parent = parent
        self._on_escalate = on_escalate
        self._decoder = decoder
        self._max_msg_size = max_msg_size
        self._manager_kwargs: dict[str, Any] = {
            "restart_policy": restart_policy,
            "max_queue": max_queue,
            "overflow": overflow,
            **sharded_kwargs,
        }
        self._manager: ShardedWebSocketManager | None = None
        self._streams: dict[str, _HandOff] = {}  # touched on the loop only
        self._reading = False

    @property
    def manager(self) -> ShardedWebSocketManager:
        """The ``ShardedWebSocketManager`` (after ``start()``), for loop code: its methods
        must be awaited on :attr:`loop_thread`."""
        if self._manager is None:
            raise NotConnectedError("SyncShardedNetworkPype is not started; call start()")
        return self._manager

    @property
    def connections(self) -> int:
        """Connections open (or reconnecting) now."""
        return self._manager.connections if self._manager is not None else 0

    async def _build(self) -> None:
        pype = NetworkPype(self._throttler, self._auth, self._pre_processors, self._post_processors)
        decoder, max_msg_size = self._decoder, self._max_msg_size

        async def connection() -> WebSocketConnection:
            return await _new_connection(pype, decoder, max_msg_size)

        self._pype = pype
        self._manager = ShardedWebSocketManager(
            connection,
            pype.factory.throttler,
            self._pre_processors,
            self._post_processors,
            pype.factory.auth,
            codec=self._codec,
            on_escalate=self._escalated,
            **self._manager_kwargs,
        )

    def _escalated(self, connection_id: str, error: GaveUpError) -> None:
        # On the loop: ShardedWebSocketManager has no parent= of its own.
        if self._parent is not None:
            tell_quietly(
                self._parent, ChildGaveUp(child_id=connection_id, reason=str(error), error=error)
            )
        if self._on_escalate is not None:
            self._on_escalate(connection_id, error)

    async def _disconnect(self) -> None:
        if self._manager is not None:
            await self._manager.disconnect()

    def _handoffs(self) -> list[_HandOff]:
        return [self._main, *self._streams.values()]

    def connect(self, url: str, *, timeout: float | None = None, **connect_kwargs: Any) -> None:
        """Set the endpoint and ``WebSocketManager.connect``'s options for every connection;
        connections open as topics are subscribed. Starts the facade first if needed. Raises
        ``InvalidURLError`` for a bad URL."""
        self._call("connect", lambda: self.manager.connect(url, **connect_kwargs), timeout)

    def subscribe_topics(
        self, topics: Iterable[str], *, timeout: float | None = None
    ) -> SubscribeResult:
        """Subscribe ``topics`` and wait for the venue's answers (``SubscribeResult``:
        accepted and rejected topics). Opens connections as the per-connection cap needs;
        the handshake errors of a new connection are raised. ``TimeoutError`` past
        ``timeout`` seconds."""
        wanted = list(topics)

        async def subscribe() -> SubscribeResult:
            result = await self.manager.subscribe_topics(wanted)
            self._start_reading()
            return result

        return self._call("subscribe_topics", subscribe, timeout)

    def unsubscribe_topics(self, topics: Iterable[str], *, timeout: float | None = None) -> None:
        """Unsubscribe ``topics`` (unknown ones are ignored); their ``stream()`` readers get
        what is queued, then None."""
        gone = list(topics)

        async def unsubscribe() -> None:
            await self.manager.unsubscribe_topics(gone)
            for topic in gone:
                handoff = self._streams.pop(topic, None)
                if handoff is not None:
                    handoff.close()

        self._call("unsubscribe_topics", unsubscribe, timeout)

    def subscribe(self, request: WebSocketRequest, *, timeout: float | None = None) -> None:
        """A raw (not topic-coded) subscription, recorded and replayed on a connection with
        room; its messages arrive through ``get()``."""

        async def subscribe() -> None:
            await self.manager.subscribe(request)
            self._start_reading()

        self._call("subscribe", subscribe, timeout)

    def send(
        self,
        request: WebSocketRequest,
        *,
        topic: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Send ``request`` on the connection carrying ``topic`` (default: the first one);
        ``NotConnectedError`` when there is none."""
        self._call("send", lambda: self.manager.send(request, topic=topic), timeout)

    def stream(
        self, topic: str, *, max_pending: int | None = None, timeout: float | None = None
    ) -> SyncStream:
        """The messages of ``topic`` alone, with its connection's gap events (always: a
        per-topic consumer must know where its data has holes), in a queue of their own of
        ``max_pending`` items (default: the facade's). The same stream for the same topic;
        open it before subscribing the topic to miss none of its messages."""

        async def open_stream() -> SyncStream:
            handoff = self._streams.get(topic)
            if handoff is None:
                handoff = self._streams[topic] = _HandOff(
                    max_pending or self._max_pending, asyncio.get_running_loop()
                )
                self._end_like_the_others(handoff)
            return SyncStream(handoff)

        return self._call("stream", open_stream, timeout)

    def statistics(self, *, timeout: float | None = None) -> ShardedStatistics:
        """``ShardedWebSocketManager.statistics()``: every connection and subscription."""
        return self._call("statistics", lambda: self.manager.statistics(), timeout)

    def _start_reading(self) -> None:
        # Once a connection exists: the merged stream picks its decoder when it starts.
        if self._reading:
            return
        self._reading = True
        manager = self.manager
        self._spawn(
            self._pump_into(lambda: manager.iter_messages(events=True), self._route),
            "networkpype-sync-sharded-reader",
        )

    async def _route(self, item: Any) -> None:
        if isinstance(item, WebSocketResponse):
            topic = self._codec.topic_of(item.data)
            handoff = self._streams.get(topic) if topic is not None else None
            await (self._main if handoff is None else handoff).put(item)
            return
        if self._events:
            await self._main.put(item)
        rotation = isinstance(item, RotationStarted | RotationFinished)
        shard = getattr(item, "connection_id", None)
        manager = self.manager
        for topic, handoff in list(self._streams.items()):
            if rotation or manager.shard_of(topic) == shard:
                await handoff.put(item)
