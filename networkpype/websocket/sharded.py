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

The venue's limits are given as the venue states them; the library keeps the margins.
Frames of each shard are spaced ``min_send_interval`` apart (plus a margin) where the venue
counts them, at the wire, pongs and pings included (:mod:`._pacing`). Connection attempts of
all shards together stay within ``max_connection_attempts`` counted the way the venue
counts them, each attempt held from its start until its handshake's outcome and a window
after (:mod:`._budget`); redials of dark shards go before rotations, and a rotation leaves
places free for them (:mod:`._attempts`).

A subscription is confirmed by the venue's acknowledgement. Without one within
``ack_timeout`` it is sent again (up to ``SUBSCRIBE_TRIES`` times in all) while its
connection stays up; a connection that drops meanwhile replays it, and its acknowledgement is
awaited afresh. A topic the venue rejects, or never acknowledges, is not silently dropped:
``subscribe_topics`` returns it as rejected, and a topic already accepted that a rotation
loses is named by a ``TopicsLost`` event in the stream.

With ``max_age`` (the venue's own maximum connection age), each connection is replaced
make-before-break early enough to finish before it (``_budget.rotation_lead``); rotations of
different connections run side by side, and a rotation is cancelled when its connection was
redialled meanwhile. When the rotations of the connections cannot fit into the attempt budget
(``_budget.rotation_load``), a WARNING says so as the shards open: some connections will then
be cut by the venue and redialled (a reported gap).

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
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from networkpype.actors.connection import STOP_CLOSE_TIMEOUT
from networkpype.actors.delivery import DeliveryQueue
from networkpype.actors.manager import ManagerActor, ManagerSettings, OutboundPipeline
from networkpype.protocol.errors import (
    ConfigurationError,
    ConnectAbortedError,
    ConnectionClosedError,
    GaveUpError,
    NotConnectedError,
)
from networkpype.protocol.events import TopicsLost
from networkpype.protocol.messages import (
    Connect,
    ConnectionSpec,
    Disconnect,
    Send,
    Subscribe,
    Unsubscribe,
)
from networkpype.protocol.options import (
    DEFAULT_MAX_QUEUE,
    ConnectionOptions,
    OnGaveUp,
    Overflow,
    keywords_of,
    options_or_keywords,
)
from networkpype.runtime import cancel_and_wait, stop_actor, tell_quietly
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket._acks import Acks
from networkpype.websocket._attempts import AttemptGate
from networkpype.websocket._budget import AttemptBudget
from networkpype.websocket._rotation import Rotation, Rotations
from networkpype.websocket._sharded_state import (
    ConnectionStatistics,
    Shard,
    ShardedStatistics,
    SubscribeResult,
    SubscriptionStatistics,
    Wait,
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
from networkpype.websocket.manager import (
    DEFAULT_MAX_BATCH,
    check_batch_consumer,
    connection_options,
    consume,
    consume_batches,
    is_frame,
)
from networkpype.websocket.options import ShardedOptions
from networkpype.wire.connection import WebSocketConnection, check_ws_url, close_reason
from networkpype.wire.decoding import DecoderSpec, make_decoder
from networkpype.wire.pacing import WIRE_MARGIN, FramePacer
from networkpype.wire.processor import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.wire.request import WebSocketRequest

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
_ACK_POLL = 0.5  # seconds: a wait for an acknowledgement looks at its connection this often
_CLOSED = "the connection was closed or given up before the acknowledgement"
_NO_ACK = "no acknowledgement"

SUBSCRIBE_TRIES = 3
"""How often a subscription is sent on a connection that stays up without acknowledging it,
``ack_timeout`` apart, before its topics are reported lost."""


class ShardedWebSocketManager(Rotations):
    """Topic subscriptions spread over supervised connections; see the module docstring.

    ``connection_factory`` makes a fresh ``WebSocketConnection`` per shard (the factory's
    shared session). Seconds for every duration. Give the venue's limits as the venue states
    them (the margins are the library's): ``min_send_interval`` is one over the frames a
    second it allows a connection (pings and pongs included), ``max_connection_attempts``
    ``(attempts, window_seconds)``, ``max_age`` the age at which it ends a connection.
    ``on_shard_gave_up`` is ``"continue"`` or ``"stop"`` (see the module docstring). Bad
    values raise ``ConfigurationError``; settings whose rotations cannot fit the attempt
    budget are logged at WARNING.

    The keywords after ``auth`` build a :class:`~networkpype.websocket.options.ShardedOptions`;
    ``options=`` gives one whole instead (a setting given both ways: ``ConfigurationError``).
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
        overflow: Overflow = "block",
        ack_timeout: float = 10.0,
        on_escalate: EscalationHandler | None = None,
        max_age: float | None = None,
        rotation_stagger: float = 0.1,
        rotation_overlap: float = 1.0,
        dedup_key: Callable[[Any], Hashable] | None = None,
        stats_interval: float | None = None,
        parent: ActorRef[Any] | None = None,
        decoder: DecoderSpec = None,
        on_shard_gave_up: OnGaveUp = "continue",
        options: ShardedOptions | None = None,
    ) -> None:
        self._options = options = options_or_keywords(
            "ShardedWebSocketManager()",
            options,
            ShardedOptions,
            keywords_of(ShardedOptions, locals()),
        )
        self._connection_factory = connection_factory
        self._pipeline = OutboundPipeline(ws_pre_processors or (), auth, throttler)
        self._post_processors = list(ws_post_processors or [])
        self._codec: TopicCodec = options.codec or BinanceCodec()
        self._cap = options.max_topics_per_connection
        self._gap = options.min_send_interval
        self._budget: AttemptBudget | None = options.attempt_budget()
        self._gate = AttemptGate(self._budget)
        self._rotations: dict[str, Rotation] = {}  # replacement id -> its rotation
        self._replacing: dict[str, Rotation] = {}  # old id -> rotation, replacement open
        self._fit_warned = False
        self._ack_timeout = options.ack_timeout
        self._acks = Acks(self._codec, self._replay_rejected)
        self._settings = ManagerSettings(
            policy=options.policy,
            on_escalate=options.on_escalate,
            parent=options.parent,
            intercept=self._acks.intercept,
            intercept_prefixes=getattr(self._codec, "reply_prefixes", None),
            connect_gate=self._attempt_gate,
            on_connection_gave_up=options.on_shard_gave_up,
            topics_of=self._topics_of,
            on_connection_lost=self._lost_shard,
        )
        self._actor: ActorRef[ManagerActor] | None = None  # started with the first shard
        self._decoder_spec = make_decoder(options.decoder)
        self._queue: DeliveryQueue[Any] = DeliveryQueue(
            options.max_queue, options.overflow, droppable=is_frame
        )
        self._shards: list[Shard] = []
        self._lost: list[Shard] = []  # given up on, the others going on; until disconnect()
        self._shard_ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._spec: ConnectionSpec | None = None
        self._closing = False  # disconnect() under way: no shard opens
        self._live_registry: set[Any] | None = None  # as WebSocketManager's
        self._max_age = options.max_age
        self._stagger = options.rotation_stagger
        self._overlap = options.rotation_overlap
        self._dedup_key = options.dedup_key
        self._rotator: asyncio.Task[None] | None = None
        self._replay_watcher: asyncio.Task[None] | None = None
        self._stats_interval = options.stats_interval
        self._stats_logger: asyncio.Task[None] | None = None
        self._router = TopicRouter(
            self._queue, self._decoder_spec, self._codec.topic_of, self.shard_of, self._gave_up_on
        )
        self._check_rotation_fit(1, at_configuration=True)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def options(self) -> ShardedOptions:
        """The settings this manager was made with."""
        return self._options

    @property
    def connected(self) -> bool:
        """True while every shard is open (and at least one exists)."""
        return bool(self._shards) and all(s.connection.connected for s in self._shards)

    @property
    def connections(self) -> int:
        return len(self._shards)

    async def connect(
        self, ws_url: str, *, options: ConnectionOptions | None = None, **connect_kwargs: Any
    ) -> None:
        """Remember the endpoint and the ``WebSocketManager.connect`` options (its keywords,
        or ``options=``); connections open as topics arrive. Raises ``InvalidURLError`` for a
        bad URL, ``TypeError`` for an unknown option. After ``disconnect()`` (a shard given
        up, say) it starts over: a new merged stream, no topics."""
        check_ws_url(ws_url)
        self._spec = ConnectionSpec.of(
            ws_url, options_or_keywords("connect()", options, connection_options, connect_kwargs)
        )
        if self._queue.closed:  # disconnected before: the old stream has ended
            self._queue = DeliveryQueue(
                self._options.max_queue, self._options.overflow, droppable=is_frame
            )
            self._router = TopicRouter(
                self._queue,
                self._decoder_spec,
                self._codec.topic_of,
                self.shard_of,
                self._gave_up_on,
            )
        if self._live_registry is not None:
            self._live_registry.add(self)

    async def disconnect(self, *, code: int = 1000, reason: str = "") -> None:
        """Close every shard and end every stream. Idempotent.

        Each shard's open connection is closed with ``code`` and ``reason``, as
        ``WebSocketManager.disconnect`` closes its one (``ConfigurationError``, before
        anything is closed, for a code no endpoint may send or a reason over 123 bytes of
        UTF-8); a rotation's replacement not yet swapped in is closed with 1000."""
        close_reason(code, reason)
        self._closing = True  # no shard opens from now until it returns
        try:
            await self._disconnect(code, reason)
        finally:
            self._closing = False

    async def _disconnect(self, code: int, reason: str) -> None:
        if self._live_registry is not None:
            self._live_registry.discard(self)
        # Taken before the first await: a shard still opening sees it and records nothing.
        actor, self._actor = self._actor, None
        tasks = (self._rotator, self._stats_logger, self._replay_watcher)
        self._rotator = self._stats_logger = self._replay_watcher = None
        await cancel_and_wait(*tasks)
        shards, self._shards, self._lost = self._shards, [], []
        if actor is not None:
            # Closed here, side by side, before the actors stop, so the frames carry the
            # caller's code; each reader then ends quietly. Bounded like the stop's close.
            try:
                await asyncio.gather(
                    *(
                        shard.connection.disconnect(
                            code=code, reason=reason, close_timeout=STOP_CLOSE_TIMEOUT
                        )
                        for shard in shards
                        if shard.connection.connected
                    ),
                    return_exceptions=True,
                )
            finally:
                await stop_actor(actor)  # closes every other connection, then its supervisor
        await self._router.aclose()
        self._queue.close()
        self._acks.close()

    async def _ask(self, message: Any) -> None:
        """Ask the manager actor; await the send's completion when it replies with one."""
        if self._actor is None:
            raise NotConnectedError("no connection: disconnected")
        done = await self._actor.ask(message, block=False)
        if done is not None:
            await done

    async def _open_shard(self, *, append: bool = True, rotation: Rotation | None = None) -> Shard:
        """Open a new shard; ``rotation``: as the replacement of that rotation (its attempt
        goes after redials, and is cancelled when the rotation's reason is gone)."""
        if self._spec is None:
            raise NotConnectedError("call connect(url) before subscribing")
        if self._closing:
            raise ConnectAbortedError("disconnect() is under way: connect() again after it")
        if self._actor is None:
            self._actor = ManagerActor.start(None, self._queue, self._pipeline, self._settings)
        actor = self._actor
        shard_id = f"shard{next(self._shard_ids)}"
        shard = Shard(shard_id, await self._connection_factory())
        if self._actor is not actor:  # disconnect() came meanwhile
            raise ConnectAbortedError("disconnect() was called while a connection opened")
        pacer = None
        if self._gap is not None:
            pacer = shard.connection.pacer = FramePacer(self._gap)
        connect = Connect(
            spec=self._spec, connection_id=shard_id, connection=shard.connection, pace=pacer
        )
        if rotation is not None:
            self._rotations[shard_id] = rotation
        try:
            await (await actor.ask(connect, block=False))  # open, or failed
        except BaseException:
            # Failed, or our caller gave up (cancelled, timed out): the manager actor must not
            # keep opening, or keep, a connection no shard knows.
            self._rotations.pop(shard_id, None)
            tell_quietly(actor, Disconnect(connection_id=shard_id))
            raise
        if self._actor is not actor:  # disconnect() came while it opened: it is stopping
            self._rotations.pop(shard_id, None)
            tell_quietly(actor, Disconnect(connection_id=shard_id))
            raise ConnectAbortedError("disconnect() was called while a connection opened")
        shard.watched = shard.connection.opened_at  # its subscriptions are confirmed as sent
        if self._replay_watcher is None:
            self._replay_watcher = asyncio.get_running_loop().create_task(
                self._watch_replays(), name="networkpype-replay-watch"
            )
        if append:
            self._shards.append(shard)
            logger.info("sharded manager: opened %s (%d connections)", shard_id, len(self._shards))
            self._check_rotation_fit(len(self._shards))
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
        if actor is not None:
            await actor.ask(Disconnect(connection_id=shard.id), block=False)

    def _topics_of(self, shard_id: str) -> tuple[str, ...]:
        """The topics shard ``shard_id`` carries (for its ``GaveUp`` event)."""
        shard = self._shard(shard_id)
        return tuple(shard.topics) if shard is not None else ()

    def _lost_shard(self, shard_id: str, error: GaveUpError) -> None:
        """The manager actor gave up on ``shard_id`` and the others go on (its ``GaveUp``
        event is queued): forget it, so new topics go to live shards; keep it for
        ``statistics()``. Runs in the actor's handler: nothing here may wait."""
        shard = self._shard(shard_id)
        if shard is None:
            return  # a rotation's replacement, not yet swapped in: the rotation fails
        self._shards.remove(shard)
        shard.gave_up = error
        self._lost.append(shard)
        for request in {id(r): r for r in shard.topics.values()}.values():
            self._acks.forget(request)
        logger.info(
            "sharded manager: %s given up, %d topics lost; %d connections go on",
            shard_id,
            len(shard.topics),
            len(self._shards),
        )

    def _gave_up_on(self, shard_id: str) -> GaveUpError | None:
        """The error a lost shard was given up with, None for any other."""
        return next((s.gave_up for s in self._lost if s.id == shard_id), None)

    def _shard(self, shard_id: str) -> Shard | None:
        return next((s for s in self._shards if s.id == shard_id), None)

    # -- subscriptions ---------------------------------------------------------------------

    def shard_of(self, topic: str) -> str | None:
        """The id of the connection carrying ``topic``."""
        for shard in self._shards:
            if topic in shard.topics:
                return shard.id
        return None

    async def subscribe_topics(self, topics: Iterable[str]) -> SubscribeResult:
        """Subscribe ``topics`` (duplicates and topics already held count as accepted) and
        wait for the venue's answers; every accepted topic is replayed after reconnects.

        A subscription without an answer is sent again while its connection stays up
        (``SUBSCRIBE_TRIES`` in all, ``ack_timeout`` apart); a connection that drops
        meanwhile replays it, and the wait goes on (through a cool-off, if the venue asked
        for one). ``rejected`` holds the topics the venue rejected, with its reason, and
        those never acknowledged, with ``"no acknowledgement..."``: neither is recorded."""
        wanted = list(dict.fromkeys(topics))
        async with self._lock:
            held = {t for s in self._shards for t in s.topics}
            new = [t for t in wanted if t not in held]
            plan: list[tuple[Shard, list[str]]] = []
            for shard in self._shards:
                if shard.rotating:
                    continue  # its replacement is being subscribed to what it has now
                room = self._cap - shard.load - sum(len(ts) for s, ts in plan if s is shard)
                if room > 0 and new:
                    plan.append((shard, new[:room]))
                    new = new[room:]
            while new:
                shard = await self._open_shard()
                plan.append((shard, new[: self._cap]))
                new = new[self._cap :]
            sent = [(s, await self._send_subscribes(s, ts)) for s, ts in plan]
        # Written and acknowledged outside the lock: the shards' frames go out side by side,
        # and a slow venue holds up no rotation and no other call.
        outcomes = await asyncio.gather(*(self._confirm_all(s, waits) for s, waits in sent))
        rejected: dict[str, str] = {}
        for outcome in outcomes:
            rejected.update(outcome)
        accepted = tuple(t for t in wanted if t not in rejected)
        return SubscribeResult(accepted=accepted, rejected=rejected)

    async def _send_subscribes(self, shard: Shard, topics: list[str]) -> list[Wait]:
        """Record the subscribe requests of ``topics`` on ``shard``, batched by the codec, and
        queue them to be sent (paced); their writes and acknowledgements are to be awaited
        (``_confirm_all``)."""
        if self._actor is None:
            raise NotConnectedError("no connection: disconnected")
        size = self._codec.max_topics_per_message
        waits: list[Wait] = []
        for i in range(0, len(topics), size):
            chunk = topics[i : i + size]
            request, future = self._acks.subscribe(chunk)
            for topic in chunk:
                shard.topics[topic] = request
            # Recorded: replayed after reconnects.
            written = await self._actor.ask(
                Subscribe(request=request, connection_id=shard.id), block=False
            )
            waits.append((chunk, request, future, written))
        return waits

    async def _confirm_all(
        self,
        shard: Shard,
        waits: list[Wait],
        rotation: Rotation | None = None,
        *,
        replay: bool = False,
    ) -> dict[str, str]:
        """Wait for each acknowledgement (``_confirm``); take what is rejected or never
        acknowledged out of the shard and its replay record. Returns them with the reason.
        ``replay``: the waits of a replay, whose end by a closed shard loses nothing the
        manager does not report otherwise (its topics were unsubscribed, moved by a rotation,
        or named by the shard's ``GaveUp``)."""
        rejected: dict[str, str] = {}
        for chunk, request, future, written in waits:
            if written is not None:
                # The acknowledgement is timed from the write: a long replay queues frames.
                await asyncio.wait((written,))
                if not written.cancelled():
                    written.exception()  # a failed write is the ack's business: seen here
            # Sent by a replay (None): its frame is written once the frames before it are.
            head_start = 0.0 if written is not None else self._replay_time(shard)
            reason = await self._confirm(shard, request, future, rotation, head_start)
            if reason is None:
                continue
            if reason is _CLOSED and replay:
                continue
            if reason is _CLOSED and all(self.shard_of(t) not in (None, shard.id) for t in chunk):
                continue  # its shard was rotated meanwhile: the replacement carries them
            if reason is _CLOSED and not any(shard.topics.get(t) is request for t in chunk):
                continue  # unsubscribed (or re-recorded) meanwhile: nothing is lost
            logger.warning("%s: subscription of %s rejected: %s", shard.id, chunk, reason)
            for topic in chunk:
                if shard.topics.get(topic) is request:
                    del shard.topics[topic]
                rejected[topic] = reason
            self._acks.forget(request)
            with contextlib.suppress(ConnectionError, KeyError):  # closed or given up meanwhile
                await self._ask(Unsubscribe(subscription=request, connection_id=shard.id))
        return rejected

    async def _confirm(
        self,
        shard: Shard,
        request: WebSocketRequest,
        future: asyncio.Future[Reply],
        rotation: Rotation | None,
        head_start: float = 0.0,
    ) -> str | None:
        """None once ``request`` is acknowledged; otherwise why not: the venue's reason, no
        acknowledgement after ``SUBSCRIBE_TRIES`` sends on a connection that stayed up, or the
        shard closed. A rotation's replacement that drops ends the rotation
        (``ConnectionClosedError``): the old connection still carries the topics. The first
        ``ack_timeout`` starts ``head_start`` seconds late (a replay still being written)."""
        connection = shard.connection
        incarnation = connection.opened_at
        waited, tries = -head_start, 1
        while True:
            step = min(self._ack_timeout - waited, _ACK_POLL)
            await asyncio.wait((future,), timeout=step)
            if future.cancelled():
                return _CLOSED
            if future.done():
                return future.result().error
            if not connection.connected or connection.opened_at != incarnation:
                if rotation is not None:
                    raise ConnectionClosedError(
                        f"the replacement {shard.id} dropped before its subscriptions were "
                        "acknowledged",
                        code=1006,
                    )
                # Down, or up again: the replay sends it again, after the requests recorded
                # before it; its answer is awaited afresh once the connection is up.
                if connection.connected:
                    incarnation = connection.opened_at
                    waited = -self._replay_time(shard)
                continue
            waited += step
            if waited < self._ack_timeout:
                continue
            if tries >= SUBSCRIBE_TRIES:
                return f"{_NO_ACK} after {tries} sends, ack_timeout={self._ack_timeout:g} s apart"
            tries += 1
            waited = 0.0
            logger.info(
                "%s: no acknowledgement within ack_timeout=%g s; sending the subscription "
                "again (%d of %d)",
                shard.id,
                self._ack_timeout,
                tries,
                SUBSCRIBE_TRIES,
            )
            with contextlib.suppress(ConnectionError):  # dropped: the replay sends it
                await self._ask(Send(request=request, connection_id=shard.id))

    async def _watch_replays(self) -> None:
        """The replay of every reconnection is answered, or its topics are reported lost: a
        shard that came back (a new ``opened_at``) has its recorded subscriptions'
        acknowledgements awaited as a first subscription's are (``_confirm_replay``). The
        watches are tasks of this one; a rotating shard is looked at once its rotation
        ended (the rotation confirms its replacement's replays itself)."""
        watching: dict[str, asyncio.Task[None]] = {}
        async with asyncio.TaskGroup() as watches:
            while True:
                await asyncio.sleep(_ACK_POLL)
                for shard_id, task in list(watching.items()):
                    if task.done():
                        del watching[shard_id]
                for shard in self._shards:
                    opened_at = shard.connection.opened_at
                    if (
                        shard.rotating
                        or shard.id in watching  # its running watch follows reconnections
                        or not shard.connection.connected
                        or opened_at == shard.watched
                    ):
                        continue
                    shard.watched = opened_at
                    watching[shard.id] = watches.create_task(
                        self._confirm_replay(shard, opened_at),
                        name=f"networkpype-replay-{shard.id}",
                    )

    async def _confirm_replay(self, shard: Shard, since: float) -> None:
        """Await the answers of ``shard``'s replay (those that came at or after ``since``,
        monotonic seconds), sending again what is not answered (``_confirm``); report what is
        rejected or never answered with a ``TopicsLost`` event. Requests whose answer is
        awaited already (a subscription in progress) are left to whoever awaits it."""
        batches: dict[int, tuple[list[str], WebSocketRequest]] = {}
        for topic, request in shard.topics.items():
            if not self._acks.awaited(request):
                batches.setdefault(id(request), ([], request))[0].append(topic)
        waits: list[Wait] = [
            (ts, r, self._acks.expect(r, since), None) for ts, r in batches.values()
        ]
        try:
            lost = await self._confirm_all(shard, waits, replay=True)
        except Exception:  # the other shards' watches go on
            logger.exception("%s: the answers of its replay not awaited", shard.id)
            return
        for topic, reason in lost.items():
            no_ack = reason.startswith(_NO_ACK)
            lost[topic] = f"{reason}, at a replay" if no_ack else f"rejected at a replay: {reason}"
        if lost:
            self._report_lost(shard.id, lost)

    def _replay_time(self, shard: Shard) -> float:
        """Seconds the replay of ``shard``'s subscriptions takes at its pacing."""
        if self._gap is None:
            return 0.0
        requests = len({id(r) for r in shard.topics.values()}) + len(shard.raw)
        return requests * self._gap * (1 + WIRE_MARGIN)

    def _replay_rejected(self, request: WebSocketRequest, reason: str) -> None:
        """The venue rejected, at a replay, a subscription it had accepted: its topics leave
        the shard and its record, and are reported lost. Runs in the reader: nothing here
        waits (the record is told with a message, not an ask that is awaited)."""
        for shard in self._shards:
            topics = {t: None for t, r in shard.topics.items() if r is request}
            if not topics:
                continue
            for topic in topics:
                del shard.topics[topic]
            self._acks.forget(request)
            if self._actor is not None:
                self._actor.ask(
                    Unsubscribe(subscription=request, connection_id=shard.id), block=False
                )
            self._report_lost(shard.id, dict.fromkeys(topics, f"rejected at a replay: {reason}"))
            return

    def _report_lost(self, shard_id: str, lost: dict[str, str]) -> None:
        """Topics taken out of the record without the user asking: a ``TopicsLost`` event
        per reason, in the stream."""
        by_reason: dict[str, list[str]] = {}
        for topic, reason in lost.items():
            by_reason.setdefault(reason, []).append(topic)
        for reason, topics in by_reason.items():
            logger.warning("%s: %d topics lost: %s", shard_id, len(topics), reason)
            self._queue.put_nowait(
                TopicsLost(
                    connection_id=shard_id, at=time.time(), topics=tuple(topics), reason=reason
                )
            )

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
                for topic in gone:
                    self._router.end(topic)  # its stream's consumer loop ends
                await self._unsubscribe_on(shard, gone)
                if shard.load == 0 and not shard.rotating:
                    self._shards.remove(shard)
                    await self._close_shard(shard)
                    logger.info("sharded manager: closed idle %s", shard.id)

    async def _unsubscribe_on(self, shard: Shard, gone: list[str]) -> None:
        """Tell the venue, and take ``gone`` out of ``shard`` and its replay record."""
        await self._tell_unsubscribed(shard, gone)
        affected: dict[int, WebSocketRequest] = {}
        for topic in gone:
            request = shard.topics.pop(topic)
            affected[id(request)] = request
        for request in affected.values():
            await self._rerecord(shard, request)

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
                self._codec.topic_of,
            ),
            events,
        )

    def iter_batches(
        self, *, events: bool = False, max_batch: int = DEFAULT_MAX_BATCH
    ) -> AsyncIterator[list[Any]]:
        """Lists of decoded data from every shard (but what a ``stream()`` claims), as
        ``WebSocketManager.iter_batches()`` yields them (see there). ``ConfigurationError``
        with post-processors, and with ``dedup_key``: duplicates are removed one message
        at a time (use ``iter_messages()``)."""
        check_batch_consumer(self._post_processors, max_batch)
        if self._dedup_key is not None:
            raise ConfigurationError(
                "iter_batches() does not remove a rotation's duplicates, and this manager "
                "has a dedup_key: use iter_messages()"
            )
        return consume_batches(self._router.consumer_queue, self._decoder_spec, events, max_batch)

    def stream(
        self, topic: str, *, max_queue: int | None = None, overflow: Overflow | None = None
    ) -> AsyncIterator[Any]:
        """The messages of ``topic`` alone, with its shard's gap events (always included:
        a per-topic consumer must know where its data has holes; a ``MessagesDropped`` of the
        merged queue, tied to no topic, reaches every stream). Own bounded queue with its
        own ``overflow`` policy (default: the manager's). Messages a running
        ``iter_messages()`` had already taken when the first stream was created are
        delivered there."""
        options = self._options
        stream = self._router.open(
            topic, max_queue or options.max_queue, overflow or options.overflow
        )
        drained = drain(stream.queue, self._post_processors, True)
        if self._dedup_key is None:
            return drained
        return dedup_rotations(drained, self._dedup_key, self._codec.topic_of)

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
