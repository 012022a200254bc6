"""``WebSocketManager``: the seed's recommended interface, a facade over the manager actor.

Outbound calls (``send``, ``subscribe``, ``ping``, ``connect``, ``disconnect``) are messages
to the manager actor, which owns the pipeline and the connection actor. Inbound, the
consumer reads the delivery queue the connection's reader fills, and post-processors run in
the consumer's task as each message is taken: no actor hop per frame.

All methods must be awaited on the event loop that called ``connect()``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pykka import ActorRef

from networkpype.actors.connection import STOP_CLOSE_TIMEOUT
from networkpype.actors.delivery import DROPPED, DeliveryQueue, QueueClosed, Raise
from networkpype.actors.manager import ManagerActor, ManagerSettings, OnConnect, OutboundPipeline
from networkpype.protocol.errors import (
    AlreadyConnectedError,
    ConfigurationError,
    ConnectAbortedError,
    NotConnectedError,
)
from networkpype.protocol.events import MessagesDropped
from networkpype.protocol.messages import (
    Connect,
    ConnectionSpec,
    Send,
    SendPing,
    Subscribe,
    Unsubscribe,
)
from networkpype.protocol.options import (
    DEFAULT_COMPRESS,
    DEFAULT_MAX_QUEUE,
    ConnectionOptions,
    Overflow,
    keywords_of,
    options_or_keywords,
)
from networkpype.runtime import stop_actor
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.websocket.options import ManagerOptions
from networkpype.wire.connection import BinaryFrame, WebSocketConnection, close_reason
from networkpype.wire.decoding import MessageDecoder, too_deep
from networkpype.wire.processor import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.wire.request import WebSocketRequest
from networkpype.wire.response import WebSocketResponse

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = [
    "BATCH_BYTES",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_QUEUE",
    "WebSocketManager",
    "check_batch_consumer",
    "connection_options",
    "consume",
    "consume_batches",
    "is_frame",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 1_000
"""The most messages ``iter_batches()`` puts in one list."""

BATCH_BYTES = 16 * 1024
"""``iter_batches()`` ends a list once it holds this many bytes of payload: every object a
list's messages decode to lives until the list is dropped, and past a few hundred of them
Python's garbage collector starts scanning them again and again (measured: lists of 1,000
order-book updates decode 6x slower than one at a time; 16 of them cost nothing extra)."""


def connection_options(
    *,
    ping_timeout: float = 10,
    auto_ping: bool = False,
    message_timeout: float | None = None,
    ws_headers: dict[str, Any] | None = None,
    verify_ssl: bool = True,
    ping_interval: float | None = None,
    pong_timeout: float | None = None,
    no_data_timeout: float | None = None,
    app_ping_interval: float | None = None,
    app_ping_payload: str = "ping",
    compress: int | bool = DEFAULT_COMPRESS,
) -> ConnectionOptions:
    """The ``ConnectionOptions`` of ``WebSocketManager.connect``'s keywords (see there): the
    one place where the seed's keywords map onto it. ``ping_timeout`` is the default of both
    ``ping_interval`` and ``pong_timeout`` (0: no pings); ``auto_ping`` is accepted for
    compatibility (the server's pings are always answered)."""
    del auto_ping
    interval = ping_timeout if ping_interval is None else ping_interval
    return ConnectionOptions(
        message_timeout=message_timeout,
        headers=ws_headers or None,
        verify_ssl=verify_ssl,
        ping_interval=interval or None,
        pong_timeout=(ping_timeout or interval or 10.0) if pong_timeout is None else pong_timeout,
        no_data_timeout=no_data_timeout,
        app_ping_interval=app_ping_interval,
        app_ping_payload=app_ping_payload,
        compress=compress,
    )


class WebSocketManager:
    """Pre/post-processing, authentication, throttling and supervision around one WebSocket.

    ``connection`` is the socket to drive (``ConnectionManagersFactory.get_ws_manager()``
    makes one on the shared session); the pre-processors, post-processors and ``auth`` follow
    in NetworkPype's order, and ``throttler`` (keyword only, not in NetworkPype) applies each
    request's ``throttler_limit_id``. ``max_queue`` bounds the messages buffered towards the
    consumer: when the consumer falls behind, reading stops (TCP pushes back) and nothing is
    dropped.

    Supervision: when the connection fails after ``connect()`` succeeded, it is restarted by
    ``restart_policy`` (default: ``RestartPolicy()``, see ``networkpype.supervisor.policy``)
    and every recorded subscription is replayed; ``on_connect`` (an async function returning
    requests) runs before each replay and at the first connection. Consumers that pass
    ``events=True`` see the gaps (``Disconnected``/``Reconnected``) in order with the data.
    When the supervisor gives up, ``receive()``/``iter_messages()`` raise ``GaveUpError``
    (a ``ConnectionError``) after the data received before, and ``on_escalate(id, error)``
    is called.

    The keywords after ``auth`` build a :class:`~networkpype.websocket.options.ManagerOptions`;
    ``options=`` gives one whole instead (a setting given both ways: ``ConfigurationError``).
    """

    def __init__(
        self,
        connection: WebSocketConnection,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        auth: Auth | None = None,
        *,
        throttler: AsyncThrottler | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        restart_policy: RestartPolicy | None = None,
        on_connect: OnConnect | None = None,
        on_escalate: EscalationHandler | None = None,
        parent: ActorRef[Any] | None = None,
        overflow: Overflow = "block",
        options: ManagerOptions | None = None,
    ) -> None:
        self._options = options = options_or_keywords(
            "WebSocketManager()", options, ManagerOptions, keywords_of(ManagerOptions, locals())
        )
        self._connection = connection
        self._pipeline = OutboundPipeline(ws_pre_processors or (), auth, throttler)
        self._post_processors = list(ws_post_processors or [])
        self._settings = ManagerSettings(
            policy=options.policy,
            on_connect=options.on_connect,
            on_escalate=options.on_escalate,
            parent=options.parent,
        )
        self._queue: DeliveryQueue[Any] = DeliveryQueue(
            options.max_queue, options.overflow, droppable=is_frame
        )
        self._queue.close()  # until connect(): a receive() before it returns None at once
        self._actor: ActorRef[ManagerActor] | None = None
        # The factory's set of managers to disconnect at close(): in it only while connected,
        # so a program that makes and drops managers for weeks leaves none behind.
        self._live_registry: set[Any] | None = None

    @property
    def options(self) -> ManagerOptions:
        """The settings this manager was made with."""
        return self._options

    # -- seed API ----------------------------------------------------------------------

    @property
    def connection(self) -> WebSocketConnection:
        return self._connection

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open (False during a reconnection)."""
        return self._connection.connected

    @property
    def last_recv_time(self) -> float:
        """Unix time (seconds) of the last data frame received; 0.0 before the first."""
        return self._connection.last_recv_time

    @property
    def actor_ref(self) -> ActorRef[ManagerActor] | None:
        """The manager actor while connected (for hosts that supervise it)."""
        return self._actor

    async def connect(
        self,
        ws_url: str,
        *,
        ping_timeout: float = 10,
        auto_ping: bool = False,
        message_timeout: float | None = None,
        ws_headers: dict[str, Any] | None = None,
        verify_ssl: bool = True,
        ping_interval: float | None = None,
        pong_timeout: float | None = None,
        no_data_timeout: float | None = None,
        app_ping_interval: float | None = None,
        app_ping_payload: str = "ping",
        retry: bool = False,
        compress: int | bool = DEFAULT_COMPRESS,
        options: ConnectionOptions | None = None,
    ) -> None:
        """Open the WebSocket; the seed's parameters as ``WebSocketConnection.connect``.

        Liveness (seconds): a ping goes out after ``ping_interval`` without any frame and the
        link is replaced when nothing arrives within ``pong_timeout`` after it; both default
        to the seed's ``ping_timeout`` (0 turns pings off). ``auto_ping`` is accepted for
        compatibility: under the manager, pings are sent by these settings and the server's
        pings are always answered. ``no_data_timeout`` replaces a
        link that carried no data for that long; ``app_ping_interval`` sends
        ``app_ping_payload`` as a text frame on that schedule. ``compress`` offers
        permessage-deflate (``True``, or window bits 9-15; off by default), as
        ``WebSocketConnection.connect``: every reconnection offers it again.

        Raises ``AlreadyConnectedError`` when connected, and the handshake errors of the
        error tree when the server cannot be reached or refuses: by default the first
        connection is not retried. ``retry=True`` retries it as a reconnection would be,
        under ``restart_policy`` (backoff, restart intensity), for a program that may start
        before its venue is up: it returns once open; a fatal error (HTTP 401/403/404, a TLS
        certificate, a bad URL) is still raised at once, and past the restart intensity
        ``GaveUpError`` (``__cause__``: the last failure) is.

        A ``disconnect()`` meanwhile makes it raise ``ConnectAbortedError``; cancelling the
        task that awaits it raises ``CancelledError``, as always, and closes the manager.

        The keywords but ``retry`` build a
        :class:`~networkpype.protocol.options.ConnectionOptions` (``connection_options``);
        ``options=`` gives one whole instead (a setting given both ways:
        ``ConfigurationError``).
        """
        keywords = keywords_of(connection_options, locals())
        spec = ConnectionSpec.of(
            ws_url, options_or_keywords("connect()", options, connection_options, keywords)
        )
        if self._actor is not None:
            raise AlreadyConnectedError("already connected; disconnect() first")
        settings = self._options
        self._queue = DeliveryQueue(settings.max_queue, settings.overflow, droppable=is_frame)
        actor = self._actor = ManagerActor.start(
            self._connection, self._queue, self._pipeline, self._settings
        )
        try:
            opened = await actor.ask(Connect(spec=spec, retry=retry), block=False)
            await opened  # open, or failed (ConnectAbortedError: disconnect() meanwhile)
        except BaseException:
            await self._shutdown(actor)
            raise
        if self._actor is not actor:  # disconnect() came between the opening and now
            raise ConnectAbortedError("disconnect() was called while connecting")
        if self._live_registry is not None:
            self._live_registry.add(self)

    async def disconnect(self, *, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket and stop its actors, from any state (connecting, mid-backoff,
        mid-handshake, mid-replay, given up): every socket is closed when it returns,
        promptly (a server that does not answer is not waited for). Idempotent. A
        ``connect()`` still opening raises ``ConnectAbortedError``; a consumer waiting in
        ``receive()`` gets what was already queued, then None.

        An open connection is closed with ``code`` and ``reason`` (as
        ``WebSocketConnection.disconnect``: ``ConfigurationError``, before anything is
        closed, for a code no endpoint may send or a reason over 123 bytes of UTF-8)."""
        close_reason(code, reason)
        if self._actor is not None and self._connection.connected:
            # Closed here, before the actors stop, so the frame carries the caller's code;
            # the reader then ends quietly (no failure, no restart) and the stop closes the
            # rest. Bounded like the stop's own close.
            await self._connection.disconnect(
                code=code, reason=reason, close_timeout=STOP_CLOSE_TIMEOUT
            )
        await self._shutdown()

    async def _shutdown(self, only: ActorRef[ManagerActor] | None = None) -> None:
        """Stop the manager actor and end the stream; with ``only``, just when that actor is
        still this manager's (a failed ``connect()`` must not stop a later one's)."""
        if only is not None and self._actor is not only:
            return  # disconnect() has stopped it already
        actor, self._actor = self._actor, None
        if self._live_registry is not None:
            self._live_registry.discard(self)
        self._queue.close()
        if actor is not None:
            await stop_actor(actor)

    def _require_actor(self) -> ActorRef[ManagerActor]:
        if self._actor is None:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return self._actor

    async def _ask_and_wait(self, message: Any) -> None:
        done = await self._require_actor().ask(message, block=False)
        if done is not None:
            await done

    async def send(self, request: WebSocketRequest) -> None:
        """Pre-process, authenticate when ``is_auth_required``, throttle when the request
        names a ``throttler_limit_id``, and send. Returns once the frame is written; raises
        ``NotConnectedError`` while the connection is down."""
        await self._ask_and_wait(Send(request=request))

    async def subscribe(self, request: WebSocketRequest) -> None:
        """Send ``request`` and record it: after every reconnection it is sent again, in
        subscription order, processed and signed afresh. ``unsubscribe`` forgets it.

        During a reconnection the request is recorded and goes out with the replay.
        """
        await self._ask_and_wait(Subscribe(request=request))

    async def unsubscribe(
        self, subscription: WebSocketRequest, request: WebSocketRequest | None = None
    ) -> None:
        """Forget ``subscription`` (the object given to ``subscribe``) and, when given, send
        ``request`` to tell the server. Raises ``KeyError`` for an unknown subscription."""
        await self._ask_and_wait(Unsubscribe(subscription=subscription, send=request))

    async def subscriptions(self) -> list[WebSocketRequest]:
        """The recorded subscriptions, in replay order."""
        return list(await self._require_actor().proxy().subscriptions())

    async def ping(self) -> None:
        """Send a WebSocket ping frame."""
        await self._require_actor().ask(SendPing(), block=False)

    async def receive(self, *, events: bool = False) -> WebSocketResponse | Any | None:
        """The next message, post-processed; None once disconnected and drained.

        With ``events=True`` lifecycle events (``networkpype.protocol.events``) are returned
        too, in order with the messages. Raises ``GaveUpError`` (a ``ConnectionError``) once
        the supervisor gave up, ``ConnectionClosedError`` for a connection made without
        supervision that closed, ``MessageTimeoutError`` (a ``TimeoutError``) when
        ``message_timeout`` elapsed without a message, and what a post-processor raised (that
        message is consumed; the next call returns the one after it). ``RuntimeError`` when
        another task is already waiting for a message of this manager.
        """
        # The one consumer loop, asked for one message: nothing is taken that is not returned.
        messages = consume(
            lambda: self._queue, self._connection.decoder, self._post_processors, events
        )
        try:
            return await anext(messages, None)
        finally:
            await messages.aclose()

    def iter_messages(self, *, events: bool = False) -> AsyncIterator[Any]:
        """Yield each message, post-processed, until ``disconnect()``; raises as
        ``receive()``. With ``events=True`` lifecycle events are yielded in order too,
        and ``MessagesDropped`` when an ``overflow`` policy dropped some.

        A message leaves the manager's queue only when it is yielded: after a ``break``, an
        error or a cancelled consumer task, a new ``iter_messages()`` (or ``receive()``)
        goes on with the next message, exactly where the last one stopped."""
        # The consumer loop itself is returned, not wrapped: one generator per message less.
        return consume(lambda: self._queue, self._connection.decoder, self._post_processors, events)

    def iter_batches(
        self, *, events: bool = False, max_batch: int = DEFAULT_MAX_BATCH
    ) -> AsyncIterator[list[Any]]:
        """Yield lists of decoded data (``WebSocketResponse.data``, no response objects): each
        list holds the messages queued when it is made, oldest first, at most ``max_batch``
        and about ``BATCH_BYTES`` of payload (at least one message). The opt-in fast consumer
        beside ``iter_messages()``, which it otherwise matches: ends at ``disconnect()``,
        raises as ``receive()`` (a queued error after the list of the messages before it),
        and with ``events=True`` lifecycle events and ``MessagesDropped`` are items of the
        lists, in order with the data.

        A message leaves the queue only in a list that is yielded: after a ``break``, an
        error or a cancelled task, a new ``iter_batches()`` or ``iter_messages()`` goes on
        with the next message. A frame the decoder fails on is consumed and its error raised
        (after the list of the messages before it), as ``iter_messages()`` does.

        Post-processors work on one ``WebSocketResponse`` at a time, which this consumer
        does not make: a manager with ``ws_post_processors`` raises ``ConfigurationError``
        here (use ``iter_messages()``). ``ConfigurationError`` too for ``max_batch`` < 1.
        """
        check_batch_consumer(self._post_processors, max_batch)
        return consume_batches(lambda: self._queue, self._connection.decoder, events, max_batch)


def is_frame(item: Any) -> bool:
    """True for a queued data frame (what an overflow policy may drop), not an event."""
    return type(item) is bytes or type(item) is BinaryFrame


async def consume(
    queue_of: Callable[[], DeliveryQueue[Any]],
    decoder: MessageDecoder,
    processors: list[WebSocketPostProcessor],
    events: bool,
) -> AsyncGenerator[Any, None]:
    """The consumer's side of the hot path: take the queue's items one by one, decode,
    post-process and yield each. ``queue_of`` is called whenever the queue is found empty or
    ``moved`` (a manager replaces its queue at ``connect()``, a sharded manager's router
    takes it over and ``hand_over()`` marks it).

    An item is removed only as it is handed on: a consumer that stops (``break``, a raised
    error, a cancelled task) leaves the rest queued for the next one. A frame whose decoding
    or post-processing raises is consumed and the error raised in its place; a cancellation
    while post-processors run puts the frame back, to be processed again by the next consumer.
    Queued errors are raised in order; ``DROPPED`` markers become ``MessagesDropped`` events
    (and a WARNING). Items already decoded (``WebSocketResponse``) pass through undecoded.
    """
    # decode_text and decode_binary are looked up where used (rarely: the fast path decodes
    # nearly every frame), not held as bound methods by every idle consumer.
    fast_decode, fast_errors, below = _fast_path(decoder)
    unchecked = below == sys.maxsize  # no payload needs too_deep() (Python 3.11's default)
    # A response made by object.__new__ and two slot stores skips the dataclass's __init__,
    # a Python call per message (measured: ~6 % of a message's cost in a 100-connection
    # fan-in).
    new = object.__new__
    response_type = WebSocketResponse
    while True:
        queue = queue_of()
        if not queue.items:  # waited for here, with no frame of a coroutine of its own
            waiting = _waiting(queue)
            if waiting is None:
                return
            await waiting
            continue
        items = queue.items
        popleft = items.popleft
        # The queued items are taken without asking queue_of() again, until there are none
        # or the queue is handed over (``moved``: a sharded manager's router takes it; the
        # router itself reads on). ``alert`` is the one test per item while nothing of
        # that (nor another reader, nor a producer waiting for room) needs a look.
        while items:
            if queue.alert:
                if queue.taking:
                    raise _second_reader()
                if queue.moved and queue_of() is not queue:
                    break
                item = popleft()
                if queue.putters:
                    queue.taken()  # a producer waits for room
                queue.alert = queue.moved or bool(queue.putters)
            else:
                item = popleft()
            kind = type(item)
            if kind is bytes:
                response = new(response_type)
                response.is_binary = False
                if unchecked or len(item) < below or not too_deep(item):
                    try:
                        response.data = fast_decode(item)
                    except fast_errors:
                        response.data = decoder.decode_text(item)
                else:  # nested too deep: the decoder's answer (the text)
                    response.data = decoder.decode_text(item)
            elif kind is BinaryFrame:
                response = WebSocketResponse(decoder.decode_binary(item.data), is_binary=True)
            elif isinstance(item, WebSocketResponse):
                response = item  # decoded already (by a sharded manager's router)
            else:
                event = _not_data(item, queue)  # raises a queued error
                if events and event is not None:
                    yield event
                continue
            if processors:
                queue.taking = queue.alert = True
                try:
                    for processor in processors:
                        response = await processor.post_process(response)
                except asyncio.CancelledError:
                    items.appendleft(item)  # not handed out: the next consumer gets it
                    raise
                finally:
                    queue.taking = False
            yield response
        # Not kept while the consumer waits: the queue gives an emptied deque up (wait()).
        del items, popleft


def _fast_path(decoder: MessageDecoder) -> tuple[Callable[[bytes], Any], Any, int]:
    """What the consumer loops call for a text frame: a decoder may offer its raw msgspec
    call (``fast_path``), the errors after which ``decode_text()`` decides, and the payload
    length from which ``too_deep()`` must say no first (``fast_path_below``: longer payloads
    may nest deeper than ``MAX_JSON_DEPTH``); the common case then costs no Python call."""
    fast_path = getattr(decoder, "fast_path", None)
    if fast_path is None:
        return decoder.decode_text, (), sys.maxsize
    decode, errors = fast_path
    return decode, errors, getattr(decoder, "fast_path_below", sys.maxsize)


def _waiting(queue: DeliveryQueue[Any]) -> Awaitable[None] | None:
    """The consumer loops' wait for an empty queue (``queue.wait()``, awaited by the caller);
    None once it is closed and drained."""
    try:
        return queue.wait()
    except QueueClosed:
        return None


def _second_reader() -> RuntimeError:
    return RuntimeError(
        "another task is reading this stream (it is running a post-processor): read a "
        "manager (or stream) from one task at a time"
    )


def _not_data(item: Any, queue: DeliveryQueue[Any]) -> Any:
    """The consumer loops' handling of a queued item that is not a message: a queued error
    is raised, a ``DROPPED`` marker logged and made a ``MessagesDropped`` event; the event
    to hand on (to a consumer that asked for events)."""
    if type(item) is Raise:
        raise item.error
    if item is DROPPED:
        count = queue.unreported_drops()
        logger.warning(
            "consumer too slow: %d messages dropped (overflow=%s)", count, queue.overflow
        )
        return MessagesDropped(connection_id="*", at=time.time(), count=count)
    return item  # a lifecycle event


def check_batch_consumer(processors: list[WebSocketPostProcessor], max_batch: int) -> None:
    """``ConfigurationError`` unless a batch consumer (``iter_batches``) can serve: no
    post-processors, ``max_batch`` at least 1."""
    if processors:
        names = ", ".join(type(p).__name__ for p in processors)
        raise ConfigurationError(
            f"iter_batches() yields decoded data without post-processing, and this manager "
            f"has ws_post_processors ({names}): use iter_messages(), or do that processing "
            "on the batches"
        )
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ConfigurationError(f"max_batch must be an integer of at least 1, got {max_batch!r}")


async def consume_batches(
    queue_of: Callable[[], DeliveryQueue[Any]],
    decoder: MessageDecoder,
    events: bool,
    max_batch: int,
) -> AsyncGenerator[list[Any], None]:
    """The batch consumer (``iter_batches``): ``consume`` without post-processors, yielding
    the decoded data of every queued item (up to ``max_batch``) as one list.

    Items are popped and decoded in one pass with no await before the list is yielded, so
    an item leaves the queue only in a list that is handed on. A queued error, or a frame
    whose decoding raises, ends the list before it: the list is yielded, and the error is
    raised at the next step (the failing frame consumed with it, as in ``consume``).
    """
    decode_text, decode_binary = decoder.decode_text, decoder.decode_binary
    fast_decode, fast_errors, below = _fast_path(decoder)
    while True:
        queue = queue_of()
        if not queue.items:
            waiting = _waiting(queue)
            if waiting is None:
                return
            await waiting
            continue
        if queue.taking:
            raise _second_reader()
        items = queue.items
        batch: list[Any] = []
        append = batch.append
        popleft = items.popleft
        room = BATCH_BYTES
        try:
            for _ in range(min(len(items), max_batch)):
                if room <= 0:
                    break
                item = popleft()
                kind = type(item)
                if kind is bytes:
                    size = len(item)
                    room -= size
                    if size < below or not too_deep(item):
                        try:
                            append(fast_decode(item))
                        except fast_errors:
                            append(decode_text(item))
                    else:
                        append(decode_text(item))
                elif kind is BinaryFrame:
                    room -= len(item.data)
                    append(decode_binary(item.data))
                elif isinstance(item, WebSocketResponse):
                    append(item.data)  # decoded already (by a sharded manager's router)
                else:
                    event = _not_data(item, queue)
                    if events and event is not None:
                        append(event)
        except Exception:
            if not batch:
                raise  # the error is the head of the queue: consumed, raised in its place
            items.appendleft(item)  # after the list before it; raised at the next step
        finally:
            queue.taken()
        del items, popleft  # not kept while the consumer waits (see consume)
        if batch:
            yield batch
