"""``ShardedWebSocketManager``: hundreds of topic subscriptions over as many supervised
connections as a per-connection cap requires.

One manager actor runs every shard: one supervisor, and under it one connection actor per
shard (each with its own subscription record and replay), all writing into one shared
delivery queue, so ``iter_messages()`` is one merged, bounded stream with every shard's gap
events in order.
Topics go to the first shard with room (``max_topics_per_connection``); a new shard opens
when every shard is full. Topics are batched into as few subscribe messages as the codec
allows, each acknowledgement is matched to its request id before the queue (so acks are
seen even while nobody reads), and a rejected topic is reported to the caller.

Outbound frames of each shard are paced evenly (``min_send_interval``: a minimum gap, not
a bursting bucket), replays included; connection attempts of all shards together are
limited to ``max_connection_attempts`` per window. Both are limits of one throttler the
manager owns (a pacing limit per shard).

``stream(topic)`` gives a per-topic stream; once one exists, a router task owned by the
manager decodes the merged stream and hands each message to its topic's queue (or to
``iter_messages()`` when no stream claims it), and the shard's gap events to every stream
of that shard. Each queue has its own overflow policy.

A shard whose supervisor gives up does not take the others down (``on_shard_gave_up=
"continue"``, the default): the merged stream carries a ``GaveUp`` event naming the shard and
its topics, in order with the data, and goes on; each lost topic's ``stream()`` gets the event
and ends with the ``GaveUpError``; the shard is forgotten (new topics go to live shards, or a
new one) and ``statistics()`` lists it as ``gave_up``. When no shard is left alive, the merged
stream ends with the ``GaveUpError``. ``on_shard_gave_up="stop"`` ends everything at the first
give-up: the merged stream and every ``stream()`` end with the error, the other shards close.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from networkpype.actors.delivery import DeliveryQueue
from networkpype.actors.manager import (
    GAVE_UP_POLICIES,
    ManagerActor,
    ManagerSettings,
    OutboundPipeline,
    Pace,
)
from networkpype.protocol.errors import ConfigurationError, GaveUpError, NotConnectedError
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.protocol.messages import (
    Connect,
    ConnectionSpec,
    Disconnect,
    Send,
    Subscribe,
    Unsubscribe,
)
from networkpype.runtime import stop_actor, tell_quietly
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket._acks import Acks
from networkpype.websocket._sharded_state import (
    ConnectionStatistics,
    Shard,
    ShardedStatistics,
    SubscribeResult,
    SubscriptionStatistics,
    log_statistics,
    snapshot,
)
from networkpype.websocket._sharded_streams import (
    TopicRouter,
    dedup_rotations,
    drain,
    only_messages,
)
from networkpype.websocket.codec import BinanceCodec, Reply, TopicCodec
from networkpype.websocket.connection import WebSocketConnection, check_ws_url
from networkpype.websocket.decoding import DecoderSpec, make_decoder
from networkpype.websocket.manager import DEFAULT_MAX_QUEUE, connection_spec, consume, is_frame
from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.websocket.request import WebSocketRequest

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
    ``(attempts, window_seconds)``. ``on_shard_gave_up`` is ``"continue"`` or ``"stop"``
    (see the module docstring).
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
        on_shard_gave_up: str = "continue",
    ) -> None:
        if on_shard_gave_up not in GAVE_UP_POLICIES:
            raise ConfigurationError(
                f"on_shard_gave_up={on_shard_gave_up!r}: use one of {', '.join(GAVE_UP_POLICIES)}"
            )
        if max_topics_per_connection < 1:
            raise ConfigurationError(
                f"max_topics_per_connection must be >= 1, got {max_topics_per_connection}"
            )
        if min_send_interval is not None and min_send_interval <= 0:
            raise ConfigurationError(f"min_send_interval must be > 0 s, got {min_send_interval}")
        self._connection_factory = connection_factory
        self._pipeline = OutboundPipeline(list(ws_pre_processors or []), auth, throttler)
        self._post_processors = list(ws_post_processors or [])
        self._codec: TopicCodec = codec or BinanceCodec()
        self._cap = max_topics_per_connection
        self._gap = min_send_interval
        # One throttler of the manager's own holds the attempt limit and each shard's pacing.
        self._connect_limits = (
            [RateLimit(_CONNECT_LIMIT_ID, max_connection_attempts[0], max_connection_attempts[1])]
            if max_connection_attempts
            else []
        )
        self._limits = (
            AsyncThrottler(self._connect_limits, safety_margin_pct=0)
            if max_connection_attempts or min_send_interval
            else None
        )
        self._ack_timeout = ack_timeout
        self._acks = Acks(self._codec)
        self._settings = ManagerSettings(
            policy=restart_policy or RestartPolicy(),
            on_escalate=on_escalate,
            parent=parent,
            intercept=self._acks.intercept,
            intercept_prefixes=getattr(self._codec, "reply_prefixes", None),
            connect_throttler=self._limits if max_connection_attempts else None,
            connect_limit_id=_CONNECT_LIMIT_ID,
            on_connection_gave_up=on_shard_gave_up,
            topics_of=self._topics_of,
            on_connection_lost=self._lost_shard,
        )
        self._actor: ActorRef[ManagerActor] | None = None  # started with the first shard
        self._decoder_spec = make_decoder(decoder)
        self._max_queue, self._overflow = max_queue, overflow
        self._queue: DeliveryQueue[Any] = DeliveryQueue(max_queue, overflow, droppable=is_frame)
        self._shards: list[Shard] = []
        self._lost: list[Shard] = []  # given up on, the others going on; until disconnect()
        self._shard_ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._spec: ConnectionSpec | None = None
        self._live_registry: set[Any] | None = None  # as WebSocketManager's
        if max_age is not None and max_age <= 0:
            raise ConfigurationError(f"max_age must be > 0 s, got {max_age}")
        self._max_age = max_age
        self._stagger = rotation_stagger
        self._overlap = rotation_overlap
        self._dedup_key = dedup_key
        self._rotator: asyncio.Task[None] | None = None
        self._stats_interval = stats_interval
        self._stats_logger: asyncio.Task[None] | None = None
        self._router = TopicRouter(
            self._queue, self._decoder_spec, self._codec.topic_of, self.shard_of, self._gave_up_on
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while every shard is open (and at least one exists)."""
        return bool(self._shards) and all(s.connection.connected for s in self._shards)

    @property
    def connections(self) -> int:
        return len(self._shards)

    async def connect(self, ws_url: str, **connect_kwargs: Any) -> None:
        """Remember the endpoint and the ``WebSocketManager.connect`` options; connections
        open as topics arrive. Raises ``InvalidURLError`` for a bad URL, ``TypeError`` for
        an unknown option. After ``disconnect()`` (a shard given up, say) it starts over: a
        new merged stream, no topics."""
        check_ws_url(ws_url)
        self._spec = connection_spec(ws_url, **connect_kwargs)
        if self._queue.closed:  # disconnected before: the old stream has ended
            self._queue = DeliveryQueue(self._max_queue, self._overflow, droppable=is_frame)
            self._router = TopicRouter(
                self._queue,
                self._decoder_spec,
                self._codec.topic_of,
                self.shard_of,
                self._gave_up_on,
            )
        if self._live_registry is not None:
            self._live_registry.add(self)

    async def disconnect(self) -> None:
        """Close every shard and end every stream. Idempotent."""
        if self._live_registry is not None:
            self._live_registry.discard(self)
        tasks = [t for t in (self._rotator, self._stats_logger) if t is not None]
        self._rotator = self._stats_logger = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._shards, self._lost = [], []
        actor, self._actor = self._actor, None
        if actor is not None:
            await stop_actor(actor)  # closes every connection, then its supervisor
        await self._router.aclose()
        self._queue.close()
        if self._limits is not None:
            self._limits.rate_limits = self._connect_limits  # the shards' pacing goes
            await self._limits.aclose()
        self._acks.close()

    async def _ask(self, message: Any) -> None:
        """Ask the manager actor; await the send's completion when it replies with one."""
        if self._actor is None:
            raise NotConnectedError("no connection: disconnected")
        done = await self._actor.ask(message, block=False)
        if done is not None:
            await done

    async def _open_shard(self, *, append: bool = True) -> Shard:
        if self._spec is None:
            raise NotConnectedError("call connect(url) before subscribing")
        if self._actor is None:
            self._actor = ManagerActor.start(None, self._queue, self._pipeline, self._settings)
        shard_id = f"shard{next(self._shard_ids)}"
        shard = Shard(shard_id, await self._connection_factory())
        pace = None
        if self._gap is not None:
            assert self._limits is not None
            pace = Pace(self._limits, f"pace/{shard_id}")
            shard.pace_limit = pace.limit_id
            self._limits.rate_limits = [
                *self._limits.rate_limits,
                RateLimit(pace.limit_id, 1, self._gap),
            ]
        actor = self._actor
        connect = Connect(
            spec=self._spec, connection_id=shard_id, connection=shard.connection, pace=pace
        )
        try:
            await (await actor.ask(connect, block=False))  # open, or failed
        except BaseException:
            # Failed, or our caller gave up (cancelled, timed out): the manager actor must not
            # keep opening, or keep, a connection no shard knows.
            tell_quietly(actor, Disconnect(connection_id=shard_id))
            self._drop_pace(shard)
            raise
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

    async def _close_shard(self, shard: Shard) -> None:
        """Close one shard's connection for good (no restart), drop its pacing and the ids
        of its requests."""
        for request in {id(r): r for r in shard.topics.values()}.values():
            self._acks.forget(request)
        actor = self._actor
        try:
            if actor is not None:
                await actor.ask(Disconnect(connection_id=shard.id), block=False)
        finally:
            self._drop_pace(shard)

    def _topics_of(self, shard_id: str) -> tuple[str, ...]:
        """The topics shard ``shard_id`` carries (for its ``GaveUp`` event)."""
        shard = next((s for s in self._shards if s.id == shard_id), None)
        return tuple(shard.topics) if shard is not None else ()

    def _lost_shard(self, shard_id: str, error: GaveUpError) -> None:
        """The manager actor gave up on ``shard_id`` and the others go on (its ``GaveUp``
        event is queued): forget it, so new topics go to live shards; keep it for
        ``statistics()``. Runs in the actor's handler: nothing here may wait."""
        shard = next((s for s in self._shards if s.id == shard_id), None)
        if shard is None:
            return  # a rotation's replacement, not yet swapped in: the rotation fails
        self._shards.remove(shard)
        shard.gave_up = error
        self._lost.append(shard)
        for request in {id(r): r for r in shard.topics.values()}.values():
            self._acks.forget(request)
        self._drop_pace(shard)
        logger.info(
            "sharded manager: %s given up, %d topics lost; %d connections go on",
            shard_id,
            len(shard.topics),
            len(self._shards),
        )

    def _gave_up_on(self, shard_id: str) -> GaveUpError | None:
        """The error a lost shard was given up with, None for any other."""
        return next((s.gave_up for s in self._lost if s.id == shard_id), None)

    def _drop_pace(self, shard: Shard) -> None:
        if shard.pace_limit is not None and self._limits is not None:
            limit_id, shard.pace_limit = shard.pace_limit, None
            self._limits.rate_limits = [
                limit for limit in self._limits.rate_limits if limit.limit_id != limit_id
            ]

    # -- rotation --------------------------------------------------------------------------

    async def _rotate_forever(self, max_age: float) -> None:
        """Replace each connection before it reaches ``max_age``, one at a time, at least
        ``rotation_stagger`` seconds apart; old and new both stay open for
        ``rotation_overlap`` seconds after the new one's subscriptions are acknowledged."""
        while True:
            now = time.monotonic()
            due = [
                (s.connection.opened_at + max_age, s)
                for s in self._shards
                if s.connection.connected  # a reconnection restarts the age anyway
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
            if old is None or not old.connection.connected:
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
                    await self._ask(Subscribe(request=request, connection_id=new.id))
                if old not in self._shards:  # given up on meanwhile: its topics are lost
                    raise GaveUpError(f"{old.id} was given up on during its rotation")
                self._shards[self._shards.index(old)] = new
                swapped = True
                # Both deliver for a moment: what the old one had in flight still arrives,
                # and the new one's first messages are on their way before the old one goes.
                await asyncio.sleep(self._overlap)
            finally:
                # Whatever happens (a disconnect() cancelling us included), the connection
                # that is not in the list is closed: no shard outlives the manager.
                await self._close_shard(old if swapped else new)
            self._queue.put_nowait(
                RotationFinished(connection_id=old.id, at=time.time(), replacement=new.id)
            )
            logger.info("sharded manager: rotated %s -> %s", old.id, new.id)

    # -- subscriptions ---------------------------------------------------------------------

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
            request, future = self._acks.subscribe(chunk)
            for topic in chunk:
                shard.topics[topic] = request
            # Recorded: replayed after reconnects.
            await self._ask(Subscribe(request=request, connection_id=shard.id))
            waits.append((chunk, request, future))
        rejected: dict[str, str] = {}
        for chunk, request, future in waits:
            reason = await self._acks.wait(future, self._ack_timeout)
            if reason is not None:
                logger.warning("%s: subscription of %s rejected: %s", shard.id, chunk, reason)
                for topic in chunk:
                    shard.topics.pop(topic, None)
                    rejected[topic] = reason
                # Out of the replay record.
                self._acks.forget(request)
                await self._ask(Unsubscribe(subscription=request, connection_id=shard.id))
        return rejected

    async def unsubscribe_topics(self, topics: Iterable[str]) -> None:
        """Unsubscribe ``topics`` (unknown ones are ignored): one message per shard and
        batch; they leave the replay record (what is left of a batched subscription is
        replayed alone). A shard that is down is not told (its replay will not carry the
        topics). A shard left with nothing is closed."""
        wanted = list(dict.fromkeys(topics))
        async with self._lock:
            for shard in list(self._shards):
                gone = [t for t in wanted if t in shard.topics]
                if not gone:
                    continue
                await self._tell_unsubscribed(shard, gone)
                affected: dict[int, WebSocketRequest] = {}
                for topic in gone:
                    request = shard.topics.pop(topic)
                    affected[id(request)] = request
                    self._router.end(topic)  # its stream's consumer loop ends
                for request in affected.values():
                    await self._rerecord(shard, request)
                if shard.load == 0:
                    self._shards.remove(shard)
                    await self._close_shard(shard)
                    logger.info("sharded manager: closed idle %s", shard.id)

    async def _tell_unsubscribed(self, shard: Shard, gone: list[str]) -> None:
        size = self._codec.max_topics_per_message
        for i in range(0, len(gone), size):
            request, request_id = self._acks.unsubscribe(gone[i : i + size])
            try:
                await self._ask(Send(request=request, connection_id=shard.id))
            except ConnectionError as exc:  # down: the replay will not carry them anyway
                self._acks.unsent(request_id)
                logger.info("%s: unsubscribe not sent (%s); forgotten", shard.id, exc)
                return

    async def _rerecord(self, shard: Shard, request: WebSocketRequest) -> None:
        """``request`` lost topics: forget it, or record what is left of it in its place."""
        rest = [t for t, r in shard.topics.items() if r is request]
        replacement = None
        self._acks.forget(request)
        if rest:
            replacement = self._acks.record(rest)
            for topic in rest:
                shard.topics[topic] = replacement
        await self._ask(
            Unsubscribe(subscription=request, connection_id=shard.id, replacement=replacement)
        )

    async def subscribe(self, request: WebSocketRequest) -> None:
        """A raw subscription (not topic-coded): recorded on a shard with room, replayed
        after its reconnects; counts as one toward the cap."""
        async with self._lock:
            shard = next((s for s in self._shards if s.load < self._cap), None)
            if shard is None:
                shard = await self._open_shard()
            shard.raw.append(request)
            await self._ask(Subscribe(request=request, connection_id=shard.id))

    async def send(self, request: WebSocketRequest, *, topic: str | None = None) -> None:
        """Send on the shard carrying ``topic`` (default: the first shard)."""
        shard = next((s for s in self._shards if topic is None or topic in s.topics), None)
        if shard is None:
            raise NotConnectedError(
                f"no connection carries {topic!r}" if topic else "no connection"
            )
        await self._ask(Send(request=request, connection_id=shard.id))

    # -- consuming -------------------------------------------------------------------------

    def iter_messages(self, *, events: bool = False) -> AsyncIterator[Any]:
        """Every message of every shard (but those a ``stream()`` claims), post-processed;
        with ``events=True`` each shard's gap events in order with its data."""
        # Straight from the shared queue until a stream() starts the router; from then on
        # (at the next batch) from what the router leaves over.
        if self._dedup_key is None:
            # No duplicates to remove: the consumer loop itself, one generator layer only.
            return consume(
                self._router.consumer_queue,
                self._decoder_spec,
                self._post_processors,
                events,
            )
        return only_messages(
            dedup_rotations(
                consume(
                    self._router.consumer_queue,
                    self._decoder_spec,
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
        stream = self._router.open(topic, max_queue or self._max_queue, overflow or self._overflow)
        drained = drain(stream.queue, self._post_processors, True)
        return drained if self._dedup_key is None else dedup_rotations(drained, self._dedup_key)

    # -- statistics ------------------------------------------------------------------------

    async def _log_statistics(self, interval: float) -> None:
        """Every ``interval`` seconds, one INFO line per connection."""
        while True:
            await asyncio.sleep(interval)
            log_statistics(await self.statistics())

    async def statistics(self) -> ShardedStatistics:
        """A frozen snapshot of every connection and subscription."""
        restarts = await self._actor.proxy().restarts() if self._actor is not None else {}
        return snapshot([*self._shards, *self._lost], self._router.streams, self._queue, restarts)
