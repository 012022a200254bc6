"""``ShardedWebSocketManager``: hundreds of topic subscriptions over as many supervised
connections as a per-connection cap requires.

Each shard is a supervised ``WebSocketManager`` (its own connection actor, supervisor,
subscription record and replay) writing into one shared delivery queue, so
``iter_messages()`` is one merged, bounded stream with every shard's gap events in order.
Topics go to the first shard with room (``max_topics_per_connection``); a new shard opens
when every shard is full. Topics are batched into as few subscribe messages as the codec
allows, each acknowledgement is matched to its request id before the queue (so acks are
seen even while nobody reads), and a rejected topic is reported to the caller.

Outbound frames of each shard are paced evenly (``min_send_interval``: a minimum gap, not
a bursting bucket), replays included; connection attempts of all shards together are
limited to ``max_connection_attempts`` per window. Both are throttler limits.

``stream(topic)`` gives a per-topic stream; once one exists, a router task owned by the
manager decodes the merged stream and hands each message to its topic's queue (or to
``iter_messages()`` when no stream claims it), and the shard's gap events to every stream
of that shard. Each queue has its own overflow policy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from networkpype.actors.delivery import DeliveryQueue
from networkpype.actors.manager import PACE_LIMIT_ID, ManagerSettings
from networkpype.protocol.errors import ConfigurationError, NotConnectedError
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket._sharded_state import (
    ConnectionStatistics,
    Shard,
    ShardedStatistics,
    Stream,
    SubscribeResult,
    SubscriptionStatistics,
    log_statistics,
    snapshot,
)
from networkpype.websocket._sharded_streams import dedup_rotations, drain, only_messages
from networkpype.websocket.codec import BinanceCodec, Reply, TopicCodec
from networkpype.websocket.connection import WebSocketConnection, check_ws_url
from networkpype.websocket.decoding import DecoderSpec, MessageDecoder, make_decoder
from networkpype.websocket.manager import DEFAULT_MAX_QUEUE, WebSocketManager, consume, is_frame
from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.websocket.request import WebSocketRequest
from networkpype.websocket.response import WebSocketResponse

if TYPE_CHECKING:
    from pykka import ActorRef

    from networkpype.auth import Auth

__all__ = [
    "ConnectionStatistics",
    "ShardedStatistics",
    "ShardedWebSocketManager",
    "SubscribeResult",
    "SubscriptionStatistics",
]

logger = logging.getLogger(__name__)
_CONNECT_LIMIT_ID = "connect"


class ShardedWebSocketManager:
    """Topic subscriptions spread over supervised connections; see the module docstring.

    ``connection_factory`` makes a fresh ``WebSocketConnection`` per shard (the factory's
    shared session). Seconds for every duration; ``max_connection_attempts`` is
    ``(attempts, window_seconds)``.
    """

    def __init__(
        self,
        connection_factory: Callable[[], Awaitable[WebSocketConnection]],
        throttler: AsyncThrottler | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        auth: Auth | None = None,
        *,
        codec: TopicCodec | None = None,
        max_topics_per_connection: int = 200,
        min_send_interval: float | None = None,
        max_connection_attempts: tuple[int, float] | None = None,
        restart_policy: RestartPolicy | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        overflow: str = "block",
        ack_timeout: float = 10.0,
        on_escalate: EscalationHandler | None = None,
        max_age: float | None = None,
        rotation_stagger: float = 1.0,
        rotation_overlap: float = 1.0,
        dedup_key: Callable[[Any], Hashable] | None = None,
        stats_interval: float | None = None,
        parent: ActorRef[Any] | None = None,
        decoder: DecoderSpec = None,
    ) -> None:
        if max_topics_per_connection < 1:
            raise ConfigurationError(
                f"max_topics_per_connection must be >= 1, got {max_topics_per_connection}"
            )
        if min_send_interval is not None and min_send_interval <= 0:
            raise ConfigurationError(f"min_send_interval must be > 0 s, got {min_send_interval}")
        self._connection_factory = connection_factory
        self._throttler = throttler
        self._pre_processors = list(ws_pre_processors or [])
        self._post_processors = list(ws_post_processors or [])
        self._auth = auth
        self._codec: TopicCodec = codec or BinanceCodec()
        self._cap = max_topics_per_connection
        self._gap = min_send_interval
        self._connect_throttler = (
            AsyncThrottler(
                [
                    RateLimit(
                        _CONNECT_LIMIT_ID, max_connection_attempts[0], max_connection_attempts[1]
                    )
                ],
                safety_margin_pct=0,
            )
            if max_connection_attempts
            else None
        )
        self._policy = restart_policy or RestartPolicy()
        self._ack_timeout = ack_timeout
        self._on_escalate = on_escalate
        self._parent = parent
        self._decoder_spec = make_decoder(decoder)
        self._max_queue, self._overflow = max_queue, overflow
        self._queue: DeliveryQueue[Any] = DeliveryQueue(max_queue, overflow, droppable=is_frame)
        self._shards: list[Shard] = []
        self._pacers: list[AsyncThrottler] = []  # one per shard opened, closed at disconnect
        self._shard_ids = itertools.count(1)
        # Far from the small ids programs number their own requests with (see _intercept).
        self._request_ids = itertools.count(1 << 30)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._own_ids: set[int] = set()  # ids of our subscribe/unsubscribe requests
        self._lock = asyncio.Lock()
        self._url: str | None = None
        self._connect_kwargs: dict[str, Any] = {}
        if max_age is not None and max_age <= 0:
            raise ConfigurationError(f"max_age must be > 0 s, got {max_age}")
        self._max_age = max_age
        self._stagger = rotation_stagger
        self._overlap = rotation_overlap
        self._dedup_key = dedup_key
        self._rotator: asyncio.Task[None] | None = None
        self._stats_interval = stats_interval
        self._stats_logger: asyncio.Task[None] | None = None
        self._streams: dict[str, Stream] = {}
        self._rest: DeliveryQueue[Any] | None = None  # what no stream claims, once routing
        self._router: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while every shard is open (and at least one exists)."""
        return bool(self._shards) and all(s.manager.connected for s in self._shards)

    @property
    def connections(self) -> int:
        return len(self._shards)

    async def connect(self, ws_url: str, **connect_kwargs: Any) -> None:
        """Remember the endpoint and the ``WebSocketManager.connect`` options; connections
        open as topics arrive. Raises ``InvalidURLError`` for a bad URL."""
        check_ws_url(ws_url)
        self._url, self._connect_kwargs = ws_url, dict(connect_kwargs)

    async def disconnect(self) -> None:
        """Close every shard and end every stream. Idempotent."""
        tasks = [t for t in (self._rotator, self._stats_logger) if t is not None]
        self._rotator = self._stats_logger = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        shards, self._shards = self._shards, []
        await asyncio.gather(*(s.manager.disconnect() for s in shards))
        router, self._router = self._router, None
        if router is not None:
            router.cancel()
            await asyncio.gather(router, return_exceptions=True)
        self._queue.close()
        for stream in self._streams.values():
            stream.queue.close()
        for throttler in (self._connect_throttler, *self._pacers):
            if throttler is not None:
                await throttler.aclose()
        self._pacers.clear()
        if self._rest is not None:
            self._rest.close()
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    async def _open_shard(self, *, append: bool = True) -> Shard:
        if self._url is None:
            raise NotConnectedError("call connect(url) before subscribing")
        shard_id = f"shard{next(self._shard_ids)}"
        pace = (
            AsyncThrottler([RateLimit(PACE_LIMIT_ID, 1, self._gap)], safety_margin_pct=0)
            if self._gap
            else None
        )
        if pace is not None:
            self._pacers.append(pace)
        settings = ManagerSettings(
            policy=self._policy,
            on_escalate=self._on_escalate,
            parent=self._parent,
            name=shard_id,
            intercept=self._intercept,
            intercept_prefixes=getattr(self._codec, "reply_prefixes", None),
            connect_throttler=self._connect_throttler,
            connect_limit_id=_CONNECT_LIMIT_ID,
        )
        manager = WebSocketManager(
            await self._connection_factory(),
            self._throttler,
            self._pre_processors,
            [],
            self._auth,
            sink=self._queue,
            settings=settings,
            pace=pace,
        )
        await manager.connect(self._url, **self._connect_kwargs)
        shard = Shard(shard_id, manager)
        if append:
            self._shards.append(shard)
            logger.info("sharded manager: opened %s (%d connections)", shard_id, len(self._shards))
        if self._stats_interval and self._stats_logger is None:
            self._stats_logger = asyncio.get_running_loop().create_task(
                self._log_statistics(self._stats_interval), name="networkpype-statistics"
            )
        if self._max_age is not None and self._rotator is None:
            self._rotator = asyncio.get_running_loop().create_task(
                self._rotate_forever(self._max_age), name="networkpype-rotation"
            )
        return shard

    # -- rotation --------------------------------------------------------------------------

    async def _rotate_forever(self, max_age: float) -> None:
        """Replace each connection before it reaches ``max_age``, one at a time, at least
        ``rotation_stagger`` seconds apart; old and new both stay open for
        ``rotation_overlap`` seconds after the new one's subscriptions are acknowledged."""
        while True:
            now = time.monotonic()
            due = [
                (s.manager.connection.opened_at + max_age, s)
                for s in self._shards
                if s.manager.connected  # a reconnection restarts the age anyway
            ]
            if not due:
                await asyncio.sleep(max_age)
                continue
            when, shard = min(due, key=lambda pair: pair[0])
            if when > now:
                await asyncio.sleep(when - now)
                continue
            try:
                await self.rotate(shard.id)
            except Exception:
                logger.exception("sharded manager: rotation of %s failed; retrying later", shard.id)
            await asyncio.sleep(self._stagger)

    async def rotate(self, connection_id: str) -> None:
        """Replace connection ``connection_id`` make-before-break: a new connection opens and
        subscribes to the same topics (acknowledged) before the old one closes. The consumer
        sees ``RotationStarted``/``RotationFinished`` around the overlap."""
        async with self._lock:
            old = next((s for s in self._shards if s.id == connection_id), None)
            if old is None or not old.manager.connected:
                return  # gone, or down (maybe cooling off at the venue's request): not now
            new = await self._open_shard(append=False)
            swapped = False
            try:
                self._queue.put_nowait(
                    RotationStarted(connection_id=old.id, at=time.time(), replacement=new.id)
                )
                groups: dict[int, list[str]] = {}
                for topic, request in old.topics.items():
                    groups.setdefault(id(request), []).append(topic)
                for topics in groups.values():
                    rejected = await self._subscribe_on(new, topics)
                    if rejected:
                        logger.warning("%s: rotation lost %s: %s", new.id, list(rejected), rejected)
                for request in old.raw:
                    new.raw.append(request)
                    await new.manager.subscribe(request)
                self._shards[self._shards.index(old)] = new
                swapped = True
                # Both deliver for a moment: what the old one had in flight still arrives,
                # and the new one's first messages are on their way before the old one goes.
                await asyncio.sleep(self._overlap)
            finally:
                # Whatever happens (a disconnect() cancelling us included), the connection
                # that is not in the list is closed: no shard outlives the manager.
                await (old if swapped else new).manager.disconnect()
            self._queue.put_nowait(
                RotationFinished(connection_id=old.id, at=time.time(), replacement=new.id)
            )
            logger.info("sharded manager: rotated %s -> %s", old.id, new.id)

    # -- subscriptions ---------------------------------------------------------------------

    def _intercept(self, frame: bytes) -> bool:
        reply = self._codec.parse_reply(frame)
        if reply is None or reply.request_id not in self._own_ids:
            return False  # data, or the answer to the user's own send(): theirs to read
        future = self._pending.pop(reply.request_id, None)
        if future is not None and not future.done():
            future.set_result(reply)
        elif reply.error is not None:
            logger.warning("venue rejected request %d on replay: %s", reply.request_id, reply.error)
        return True

    def shard_of(self, topic: str) -> str | None:
        """The id of the connection carrying ``topic``."""
        for shard in self._shards:
            if topic in shard.topics:
                return shard.id
        return None

    async def subscribe_topics(self, topics: Iterable[str]) -> SubscribeResult:
        """Subscribe ``topics`` (duplicates and topics already held count as accepted) and
        wait for the venue's answers; every accepted topic is replayed after reconnects."""
        wanted = list(dict.fromkeys(topics))
        async with self._lock:
            held = {t for s in self._shards for t in s.topics}
            new = [t for t in wanted if t not in held]
            plan: list[tuple[Shard, list[str]]] = []
            for shard in self._shards:
                room = self._cap - shard.load - sum(len(ts) for s, ts in plan if s is shard)
                if room > 0 and new:
                    plan.append((shard, new[:room]))
                    new = new[room:]
            while new:
                shard = await self._open_shard()
                plan.append((shard, new[: self._cap]))
                new = new[self._cap :]
            outcomes = await asyncio.gather(*(self._subscribe_on(s, ts) for s, ts in plan))
        rejected: dict[str, str] = {}
        for outcome in outcomes:
            rejected.update(outcome)
        accepted = tuple(t for t in wanted if t not in rejected)
        return SubscribeResult(accepted=accepted, rejected=rejected)

    async def _subscribe_on(self, shard: Shard, topics: list[str]) -> dict[str, str]:
        size = self._codec.max_topics_per_message
        waits: list[tuple[list[str], WebSocketRequest, asyncio.Future[Reply]]] = []
        for i in range(0, len(topics), size):
            chunk = topics[i : i + size]
            request_id = next(self._request_ids)
            self._own_ids.add(request_id)
            request = self._codec.subscribe(chunk, request_id)
            future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = future
            for topic in chunk:
                shard.topics[topic] = request
            await shard.manager.subscribe(request)  # recorded: replayed after reconnects
            waits.append((chunk, request, future))
        rejected: dict[str, str] = {}
        for chunk, request, future in waits:
            try:
                reply = await asyncio.wait_for(future, self._ack_timeout)
                reason = reply.error
            except TimeoutError:
                reason = f"no acknowledgement within ack_timeout={self._ack_timeout} s"
            if reason is not None:
                logger.warning("%s: subscription of %s rejected: %s", shard.id, chunk, reason)
                for topic in chunk:
                    shard.topics.pop(topic, None)
                    rejected[topic] = reason
                await shard.manager.unsubscribe(request)  # out of the replay record
        return rejected

    async def unsubscribe_topics(self, topics: Iterable[str]) -> None:
        """Unsubscribe ``topics`` (unknown ones are ignored): one message per shard and
        batch; they leave the replay record. A shard left with nothing is closed."""
        async with self._lock:
            for shard in list(self._shards):
                gone = [t for t in topics if t in shard.topics]
                if not gone:
                    continue
                size = self._codec.max_topics_per_message
                for i in range(0, len(gone), size):
                    chunk = gone[i : i + size]
                    await shard.manager.send(
                        self._codec.unsubscribe(chunk, next(self._request_ids))
                    )
                for topic in gone:
                    request = shard.topics.pop(topic)
                    if not any(r is request for r in shard.topics.values()):
                        await shard.manager.unsubscribe(request)
                    stream = self._streams.pop(topic, None)
                    if stream is not None:
                        stream.queue.close()  # its consumer's loop ends
                if shard.load == 0:
                    self._shards.remove(shard)
                    await shard.manager.disconnect()
                    logger.info("sharded manager: closed idle %s", shard.id)

    async def subscribe(self, request: WebSocketRequest) -> None:
        """A raw subscription (not topic-coded): recorded on a shard with room, replayed
        after its reconnects; counts as one toward the cap."""
        async with self._lock:
            shard = next((s for s in self._shards if s.load < self._cap), None)
            if shard is None:
                shard = await self._open_shard()
            shard.raw.append(request)
            await shard.manager.subscribe(request)

    async def send(self, request: WebSocketRequest, *, topic: str | None = None) -> None:
        """Send on the shard carrying ``topic`` (default: the first shard)."""
        shard = next((s for s in self._shards if topic is None or topic in s.topics), None)
        if shard is None:
            raise NotConnectedError(
                f"no connection carries {topic!r}" if topic else "no connection"
            )
        await shard.manager.send(request)

    # -- consuming -------------------------------------------------------------------------

    def iter_messages(self, *, events: bool = False) -> AsyncIterator[Any]:
        """Every message of every shard (but those a ``stream()`` claims), post-processed;
        with ``events=True`` each shard's gap events in order with its data."""
        # Straight from the shared queue until a stream() starts the router; from then on
        # (at the next batch) from what the router leaves over.
        if self._dedup_key is None:
            # No duplicates to remove: the consumer loop itself, one generator layer only.
            return consume(
                lambda: self._queue if self._rest is None else self._rest,
                self._decoder(),
                self._post_processors,
                events,
            )
        return only_messages(
            dedup_rotations(
                consume(
                    lambda: self._queue if self._rest is None else self._rest,
                    self._decoder(),
                    self._post_processors,
                    True,
                ),
                self._dedup_key,
            ),
            events,
        )

    def stream(
        self, topic: str, *, max_queue: int | None = None, overflow: str | None = None
    ) -> AsyncIterator[Any]:
        """The messages of ``topic`` alone, with its shard's gap events (always included:
        a per-topic consumer must know where its data has holes). Own bounded queue with its
        own ``overflow`` policy (default: the manager's). Messages a running
        ``iter_messages()`` had already taken when the first stream was created are
        delivered there."""
        stream = self._streams.get(topic)
        if stream is None:
            queue: DeliveryQueue[Any] = DeliveryQueue(
                max_queue or self._max_queue,
                overflow or self._overflow,
                droppable=lambda item: isinstance(item, WebSocketResponse),
            )
            stream = self._streams[topic] = Stream(queue)
            self._start_router()
        drained = drain(stream.queue, self._post_processors, True)
        return drained if self._dedup_key is None else dedup_rotations(drained, self._dedup_key)

    def _decoder(self) -> MessageDecoder:
        return self._decoder_spec

    def _start_router(self) -> None:
        if self._router is None:
            self._rest = DeliveryQueue(
                self._max_queue,
                self._overflow,
                droppable=lambda i: isinstance(i, WebSocketResponse),
            )
            self._router = asyncio.get_running_loop().create_task(
                self._route(), name="networkpype-sharded-router"
            )

    async def _route(self) -> None:
        assert self._rest is not None
        rest, topic_of = self._rest, self._codec.topic_of
        try:
            async for item in consume(lambda: self._queue, self._decoder(), [], True):
                if isinstance(item, WebSocketResponse):
                    stream = self._streams.get(topic_of(item.data) or "")
                    if stream is not None:
                        stream.messages += 1
                        if not stream.queue.offer(item):
                            await stream.queue.put(item)
                        continue
                    if not rest.offer(item):
                        await rest.put(item)
                    continue
                rest.put_nowait(item)
                shard = getattr(item, "connection_id", None)
                rotation = isinstance(item, RotationStarted | RotationFinished)
                for topic, stream in self._streams.items():
                    if rotation or self.shard_of(topic) == shard:
                        stream.queue.put_nowait(item)
        except Exception as exc:  # a gave-up shard ends every stream with its error
            for queue in [rest, *(s.queue for s in self._streams.values())]:
                queue.fail(exc)
                queue.close()
            return
        rest.close()
        for stream in self._streams.values():
            stream.queue.close()

    # -- statistics ------------------------------------------------------------------------

    async def _log_statistics(self, interval: float) -> None:
        """Every ``interval`` seconds, one INFO line per connection."""
        while True:
            await asyncio.sleep(interval)
            log_statistics(await self.statistics())

    async def statistics(self) -> ShardedStatistics:
        """A frozen snapshot of every connection and subscription."""
        return await snapshot(self._shards, self._streams, self._queue)
