"""``SyncShardedNetworkPype``: topic subscriptions spread over supervised connections, driven
from synchronous code.

Part of the blocking facades; import the public names from :mod:`networkpype.embedding`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from pykka import ActorRef

from networkpype._embedding._facade import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_MAX_PENDING,
    _SyncFacade,
)
from networkpype._embedding._handoff import _HandOff
from networkpype._embedding._stream import SyncStream
from networkpype.facade import NetworkPype
from networkpype.protocol.errors import GaveUpError, NotConnectedError
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.protocol.messages import ChildGaveUp
from networkpype.protocol.options import (
    DEFAULT_MAX_QUEUE,
    Overflow,
    keywords_of,
    options_or_keywords,
)
from networkpype.runtime import tell_quietly
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.websocket.codec import BinanceCodec, TopicCodec
from networkpype.websocket.options import ShardedOptions
from networkpype.websocket.sharded import (
    ShardedStatistics,
    ShardedWebSocketManager,
    SubscribeResult,
)
from networkpype.wire.connection import DEFAULT_MAX_MSG_SIZE, WebSocketConnection
from networkpype.wire.decoding import DecoderSpec
from networkpype.wire.response import WebSocketResponse

if TYPE_CHECKING:
    from collections.abc import Iterable

    from networkpype.auth import Auth
    from networkpype.supervisor.policy import RestartPolicy
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.wire.processor import WebSocketPostProcessor, WebSocketPreProcessor
    from networkpype.wire.request import WebSocketRequest

__all__ = ["SyncShardedNetworkPype"]


class SyncShardedNetworkPype(_SyncFacade[ShardedWebSocketManager]):
    """Topic subscriptions spread over supervised connections (a
    ``ShardedWebSocketManager``), driven from synchronous code.

    Arguments as :class:`SyncNetworkPype`; ``codec`` (default ``BinanceCodec()``) and
    ``sharded_kwargs`` (``max_topics_per_connection``, ``min_send_interval``,
    ``max_connection_attempts``, ``ack_timeout``, ``max_age``, ``dedup_key``...) are the
    ``ShardedWebSocketManager``'s (``options=``, a ``ShardedOptions``, gives them whole
    instead). ``parent`` is told ``ChildGaveUp`` for each connection given up on (sent from
    the ``on_escalate`` hook).

    Reading: ``stream(topic)`` gives the messages of one topic (with its connection's gap
    events) in their own bounded queue; ``get()`` gives every message no stream claims (and
    every event when ``events=True``). The facade routes by ``codec.topic_of`` applied to
    the post-processed data. One consumer task feeds them all, so a full queue that nobody
    reads holds up the others: read every stream you open, and ``get()`` too when
    unclaimed messages can arrive (acknowledgements are matched before any queue).
    Reading starts at the first subscription. An error of the merged stream (what a
    post-processor raised, ``ConsumerOverflowError``, ``GaveUpError``) is raised once by
    ``get()`` and once by every open stream, in its place: the message it concerns had no
    topic yet, so any stream may have a hole there. After ``GaveUpError`` every stream ends.
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
        overflow: Overflow = "block",
        events: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        own_loop_thread: bool = False,
        options: ShardedOptions | None = None,
        **sharded_kwargs: Any,
    ) -> None:
        keywords = keywords_of(ShardedOptions, locals())
        options = options_or_keywords(
            "SyncShardedNetworkPype()", options, ShardedOptions, {**keywords, **sharded_kwargs}
        )
        super().__init__(
            throttler,
            auth,
            ws_pre_processors,
            ws_post_processors,
            decoder=decoder,
            max_msg_size=max_msg_size,
            events=events,
            max_pending=max_pending,
            call_timeout=call_timeout,
            own_loop_thread=own_loop_thread,
        )
        self._codec: TopicCodec = options.codec or BinanceCodec()
        self._parent = options.parent
        self._on_escalate = options.on_escalate
        # The give-up reaches the parent through _escalated: the manager gets neither.
        self._manager_options = msgspec.structs.replace(
            options, codec=self._codec, on_escalate=self._escalated, parent=None
        )
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

    async def _new_manager(self, pype: NetworkPype) -> ShardedWebSocketManager:
        async def connection() -> WebSocketConnection:
            return await self._new_connection(pype)

        return ShardedWebSocketManager(
            connection,
            pype.factory.throttler,
            self._pre_processors,
            self._post_processors,
            pype.factory.auth,
            options=self._manager_options,
        )

    def _escalated(self, connection_id: str, error: GaveUpError) -> None:
        # On the loop: ShardedWebSocketManager has no parent= of its own.
        if self._parent is not None:
            tell_quietly(
                self._parent, ChildGaveUp(child_id=connection_id, reason=str(error), error=error)
            )
        if self._on_escalate is not None:
            self._on_escalate(connection_id, error)

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
