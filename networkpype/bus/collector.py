"""``Collector``: one process's share of a venue's topics, kept alive with the sharded
manager and published to JetStream.

What it does, in order:

1. connects to NATS (two connections: one carries nothing but its publishes, see
   :mod:`networkpype.bus.publisher`; the other the leases), creates the stream if missing;
2. registers in the lease bucket and takes partition slots (:mod:`networkpype.bus.leases`);
3. for each slot taken, publishes a ``PartitionAcquired`` record on each topic of the
   partition, then subscribes the topics through one ``ShardedWebSocketManager``; for each
   slot lost or handed back, unsubscribes and publishes ``PartitionReleased``;
4. publishes every message of ``iter_messages(events=True)``: data on its topic's subject
   with ``Nats-Msg-Id`` and ``Np-Seq`` (:mod:`networkpype.bus.records`), the manager's gap
   events as records on each topic of the connection concerned, in order with the data.

The venue's frames are forwarded as received (no re-encoding): the collector's decoder
reads only the topic field and the sequence field of each frame (``topic_field``,
``seq_field``; Binance-style ``"stream"``/``"seq"`` by default).

``await collector.run()`` runs until cancelled or :meth:`Collector.stop`; it ends cleanly:
slots handed back (others take them at once), what is buffered flushed (within
``shutdown_timeout``), the connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from networkpype.bus import records
from networkpype.bus._nats import DEFAULT_NATS_URL, StreamSettings, connect, ensure_stream
from networkpype.bus.leases import LeaseChange, LeaseKeeper, LeaseSettings, LeaseStatistics
from networkpype.bus.partitions import Slot, split_topics
from networkpype.bus.publisher import (
    BusPublisher,
    DropNotice,
    PublisherStatistics,
    PublishSettings,
)
from networkpype.factory import ConnectionManagersFactory
from networkpype.limits.rate_limit import RateLimit
from networkpype.protocol.errors import ConfigurationError, NetworkPypeError
from networkpype.protocol.events import (
    Connected,
    Disconnected,
    GaveUp,
    MessagesDropped,
    Reconnected,
    RotationFinished,
    RotationStarted,
    TopicsLost,
)
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.sharded import ShardedWebSocketManager
from networkpype.wire.response import WebSocketResponse

__all__ = ["BINANCE_SPOT_LIMITS", "Collector", "CollectorSettings", "CollectorStatistics"]

logger = logging.getLogger(__name__)

BINANCE_SPOT_LIMITS: Mapping[str, Any] = {
    "min_send_interval": 0.2,  # 5 frames a second per connection, pings and pongs included
    "max_connection_attempts": (300, 300.0),  # per 5 minutes per IP
}
"""The default ``manager_options``: Binance spot's limits (the exchange simulator's too)."""

_PUBLISHED_EVENTS = (
    Connected,
    Disconnected,
    Reconnected,
    GaveUp,
    MessagesDropped,
    RotationStarted,
    RotationFinished,
)


@dataclass(frozen=True)
class CollectorSettings:
    """Everything a collector needs, in one place.

    ``venue``: a short name, part of every subject and message id (collectors of the same
    venue must use the same one); ``url``: the venue's WebSocket endpoint; ``topics``: the
    whole topic list of the deployment (every collector gets the same list and serves the
    partitions it holds); ``collector_id``: unique per process (default: host and pid);
    ``nats_urls``: the NATS servers; ``connect_deadline``: seconds to reach NATS at start
    before ``BusUnavailableError``; ``stamp_received``: add the ``Np-Received`` header;
    ``manager_options``: keyword arguments of ``get_sharded_ws_manager`` (default
    :data:`BINANCE_SPOT_LIMITS`, the venue's own numbers: the manager keeps its margins);
    ``connect_options``: of the manager's ``connect()``; ``shutdown_timeout``: seconds a
    clean stop waits for outstanding acknowledgements.
    """

    venue: str
    url: str
    topics: tuple[str, ...]
    collector_id: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    nats_urls: tuple[str, ...] = (DEFAULT_NATS_URL,)
    stream: StreamSettings = field(default_factory=StreamSettings)
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    topic_field: str = "stream"
    seq_field: str = "seq"
    connect_deadline: float = 30.0
    stamp_received: bool = False
    manager_options: Mapping[str, Any] = field(default_factory=lambda: dict(BINANCE_SPOT_LIMITS))
    connect_options: Mapping[str, Any] = field(default_factory=dict)
    shutdown_timeout: float = 5.0

    def __post_init__(self) -> None:
        try:
            records.check_name("venue", self.venue)
            records.check_name("collector_id", self.collector_id)
            records.check_name("stream prefix", self.stream.prefix)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if not self.topics:
            raise ConfigurationError("a collector needs at least one topic")

    @property
    def bucket(self) -> str:
        """The lease bucket of this venue and stream."""
        return f"{self.stream.name}_leases_{self.venue}".replace("-", "_")


@dataclass(frozen=True, slots=True)
class CollectorStatistics:
    """A snapshot: ``messages`` and ``records`` handed to the publisher, ``topics`` being
    served, ``skipped`` frames with no topic or of a topic not served (not published: a
    partition released, a topic the venue refused), the publisher's and the
    lease keeper's own snapshots."""

    collector_id: str
    messages: int
    records: int
    topics: int
    skipped: int
    publisher: PublisherStatistics
    leases: LeaseStatistics


def _envelope_decoder(topic_field: str, seq_field: str) -> Any:
    envelope = msgspec.defstruct(
        "Envelope",
        [(topic_field, "str | None", None), (seq_field, "int | None", None)],
    )
    decode = msgspec.json.Decoder(envelope).decode
    get_topic = operator.attrgetter(topic_field)
    get_seq = operator.attrgetter(seq_field)

    class _Decoder:
        """Keeps the frame's bytes, reads its topic and sequence number (nothing else)."""

        __slots__ = ()

        def decode_text(self, data: bytes) -> tuple[bytes, str | None, int | None]:
            try:
                head = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return data, None, None
            return data, get_topic(head), get_seq(head)

        def decode_binary(self, data: bytes) -> tuple[bytes, str | None, int | None]:
            return data, None, None

    return _Decoder()


class Collector:
    """See the module docstring. One instance, one :meth:`run`."""

    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self._groups = split_topics(settings.topics, settings.leases.partitions)
        self._run_id = f"{settings.collector_id}.{time.time_ns()}".replace(".", "-")
        self._record_numbers = 0
        self._subjects: dict[str, str] = {}
        self._serving: dict[str, int] = {}  # topic -> partition
        self._slots: dict[int, int] = {}  # partition -> replica held
        self._messages = self._records = self._skipped = 0
        self._publisher = BusPublisher(settings.publish, self._drop_record)
        self._keeper: LeaseKeeper | None = None
        self._manager: ShardedWebSocketManager | None = None
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once the collector is registered and publishing (its slots come next)."""

    # -- records ------------------------------------------------------------------------

    def _subject(self, topic: str) -> str:
        subject = self._subjects.get(topic)
        if subject is None:
            subject = records.subject_for(self.settings.stream.prefix, self.settings.venue, topic)
            self._subjects[topic] = subject
        return subject

    def _record(self, topic: str | None, record: records.BusRecord) -> None:
        """Queue ``record`` on ``topic``'s subject (None: this collector's control one)."""
        self._record_numbers += 1
        subject = (
            self._subject(topic)
            if topic is not None
            else records.control_subject(
                self.settings.stream.prefix, self.settings.venue, self.settings.collector_id
            )
        )
        headers = {
            records.HEADER_MSG_ID: records.record_msg_id(
                self._run_id, self._record_numbers, topic or "-"
            ),
            records.HEADER_KIND: records.KIND_RECORD,
        }
        self._records += 1
        self._publisher.publish_nowait(
            subject, records.encode_record(record), headers, topic=topic, record=True
        )

    def _drop_record(self, topic: str, notice: DropNotice) -> tuple[str, bytes, dict[str, str]]:
        self._record_numbers += 1
        record = records.PublishDropped(
            at=time.time(),
            topic=topic,
            collector_id=self.settings.collector_id,
            count=notice.count,
            first_seq=notice.first_seq,
            last_seq=notice.last_seq,
        )
        headers = {
            records.HEADER_MSG_ID: records.record_msg_id(self._run_id, self._record_numbers, topic),
            records.HEADER_KIND: records.KIND_RECORD,
        }
        return self._subject(topic), records.encode_record(record), headers

    def _event(self, event: Any) -> None:
        """A gap event of the manager, on each topic of its connection (or the control
        subject for those that concern no topic's data). An event kind the bus has no record
        for (a newer manager's) is logged and not published."""
        if not isinstance(event, _PUBLISHED_EVENTS):
            logger.info("collector %s: not published: %r", self.settings.collector_id, event)
            return
        manager = self._manager
        tagged = msgspec.structs.replace(
            event, connection_id=f"{self.settings.collector_id}/{event.connection_id}"
        )
        match event:
            case Disconnected() | Reconnected():
                assert manager is not None
                topics = [t for t in self._serving if manager.shard_of(t) == event.connection_id]
                for topic in topics:
                    self._record(topic, tagged)
            case GaveUp(topics=lost):
                for topic in lost:
                    self._record(topic, tagged)
            case MessagesDropped():
                # The manager's merged queue dropped them: they could be any topic's, so
                # every topic served hears of it, in order with its data (as every stream
                # of a local manager does; a book on the bus must not stay valid).
                for topic in self._serving:
                    self._record(topic, tagged)
            case Connected():
                pass  # a partition's first data follows its PartitionAcquired record
            case _:
                self._record(None, tagged)

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Collect until cancelled or :meth:`stop`; see the module docstring. Raises
        ``BusUnavailableError`` when NATS cannot be reached within ``connect_deadline``."""
        s = self.settings
        name = f"networkpype-collector {s.collector_id}"
        publisher_nc = await connect(
            s.nats_urls,
            name=f"{name} publisher",
            deadline=s.connect_deadline,
            on_disconnected=self._publisher.on_disconnected,
            on_reconnected=self._publisher.on_reconnected,
        )
        control_nc: NATS | None = None
        factory: ConnectionManagersFactory | None = None
        try:
            control_nc = await connect(
                s.nats_urls,
                name=name,
                deadline=s.connect_deadline,
                on_reconnected=self._nats_reconnected,
            )
            # KV requests time out within half a TTL: a request lost with a broken connection
            # must not hold the lease keeper past the leases it should renew.
            js = control_nc.jetstream(timeout=max(s.leases.interval, s.leases.ttl / 2))
            await ensure_stream(js, s.stream)
            await self._publisher.attach(publisher_nc)
            self._keeper = keeper = LeaseKeeper(
                js, s.bucket, s.collector_id, s.leases, store_replicas=s.stream.replicas
            )
            await keeper.open()
            factory = ConnectionManagersFactory(
                throttler=AsyncThrottler([RateLimit("default", 10, 1.0)])
            )
            options = dict(s.manager_options)
            options["decoder"] = _envelope_decoder(s.topic_field, s.seq_field)
            self._manager = manager = await factory.get_sharded_ws_manager(**options)
            await manager.connect(s.url, **dict(s.connect_options))
            logger.info(
                "collector %s: %d topics in %d partitions, %d replica(s); publishing to %s",
                s.collector_id,
                len(s.topics),
                s.leases.partitions,
                s.leases.replicas,
                s.stream.name,
            )
            self.ready.set()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._publisher.run(), name="collector-publisher")
                keeping = tasks.create_task(keeper.run(), name="collector-leases")
                applying = tasks.create_task(self._apply_changes(), name="collector-partitions")
                pumping = tasks.create_task(self._pump(manager), name="collector-pump")
                await self._stopping.wait()
                keeping.cancel()
                # Stop applying changes before the release: a release it took from the
                # queue and was cancelled in would never publish its PartitionReleased.
                applying.cancel()
                await asyncio.wait([applying])
                await keeper.release_all()
                await self._drain_changes()
                pumping.cancel()
                if not await self._publisher.flush(deadline=s.shutdown_timeout):
                    left = self._publisher.statistics()
                    logger.warning(
                        "collector %s: stopped with %d messages unacknowledged",
                        s.collector_id,
                        left.buffered + left.in_flight,
                    )
                raise _Stopped
        except* _Stopped:
            pass
        finally:
            if factory is not None:
                await factory.close()
            for nc in (control_nc, publisher_nc):
                if nc is not None:
                    with contextlib.suppress(Exception):
                        await nc.close()

    async def _nats_reconnected(self) -> None:
        if self._keeper is not None:
            self._keeper.reconnected()

    def stop(self) -> None:
        """Ask :meth:`run` to end cleanly (see the module docstring)."""
        self._stopping.set()

    def statistics(self) -> CollectorStatistics:
        """A frozen snapshot."""
        keeper = self._keeper
        leases = (
            keeper.statistics() if keeper is not None else LeaseStatistics((), 0, 0, 0, 0)
        )
        return CollectorStatistics(
            collector_id=self.settings.collector_id,
            messages=self._messages,
            records=self._records,
            topics=len(self._serving),
            skipped=self._skipped,
            publisher=self._publisher.statistics(),
            leases=leases,
        )

    async def _pump(self, manager: ShardedWebSocketManager) -> None:
        s = self.settings
        venue, publish, serving = s.venue, self._publisher.publish_nowait, self._serving
        subject_of, stamp = self._subject, s.stamp_received
        msg_id_key, seq_key, received_key = (
            records.HEADER_MSG_ID,
            records.HEADER_SEQ,
            records.HEADER_RECEIVED,
        )
        async for item in manager.iter_messages(events=True):
            if type(item) is not WebSocketResponse:
                if type(item) is TopicsLost:
                    # Those subscribed again since (a partition released and taken back
                    # while this event waited in the stream) are served: not theirs.
                    lost = [t for t in item.topics if manager.shard_of(t) is None]
                    self._not_served(dict.fromkeys(lost, item.reason))
                    continue
                self._event(item)
                if isinstance(item, GaveUp):
                    await self._give_up(item)
                continue
            payload, topic, seq = item.data
            if topic is None or topic not in serving:
                # No topic, or one this collector does not serve (released, or not served:
                # a record said so, and no gap event would reach its book any more).
                self._skipped += 1
                if self._skipped == 1:
                    logger.warning(
                        "collector %s: a frame without a %r field, or of a topic not served, "
                        "is not published (counted in statistics().skipped): %r",
                        s.collector_id,
                        s.topic_field,
                        payload[:120],
                    )
                continue
            headers = {msg_id_key: records.data_msg_id(venue, topic, seq, payload)}
            if seq is not None:
                headers[seq_key] = str(seq)
            if stamp:
                headers[received_key] = str(time.time_ns())
            self._messages += 1
            publish(subject_of(topic), payload, headers, topic=topic, seq=seq)

    async def _apply_changes(self) -> None:
        assert self._keeper is not None
        # Until a stop: its cancel can be lost inside _apply (a subscription cut short by
        # it comes back as the manager's error, handled there), and the stop waits for
        # this task to end.
        while not self._stopping.is_set():
            await self._apply(await self._keeper.changes.get())

    async def _drain_changes(self) -> None:
        """At a stop: apply the releases queued. An acquisition not applied yet is dropped
        (nothing was subscribed or published for it; its slot was released with the rest),
        so that a stop never waits on a venue that cannot be reached."""
        assert self._keeper is not None
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                change = self._keeper.changes.get_nowait()
                if not change.acquired:
                    await self._apply(change)

    async def _apply(self, change: LeaseChange) -> None:
        manager, s = self._manager, self.settings
        assert manager is not None
        partition, replica = change.slot
        topics = self._groups[partition]
        if change.acquired:
            self._slots[partition] = replica
            acquired = records.PartitionAcquired(
                at=time.time(),
                partition=partition,
                collector_id=s.collector_id,
                previous_owner=change.previous_owner,
                replica=replica,
            )
            for topic in topics:
                self._record(topic, acquired)
                self._serving[topic] = partition
            try:
                result = await manager.subscribe_topics(topics)
            except (NetworkPypeError, OSError) as exc:
                # The venue could not be reached for a new connection (the manager does not
                # retry a first handshake): hand the partition back; it is taken again, by
                # this collector or another, at a later tick.
                logger.warning(
                    "collector %s: partition %d not subscribed (%s); handing it back",
                    s.collector_id,
                    partition,
                    exc,
                )
                assert self._keeper is not None
                await self._keeper.give_up(change.slot, f"subscribing failed: {exc}")
                return
            if result.rejected:
                self._not_served(
                    {t: f"subscription rejected: {why}" for t, why in result.rejected.items()}
                )
            return
        if self._slots.pop(partition, None) is None:
            return
        for topic in topics:
            self._serving.pop(topic, None)
        with contextlib.suppress(ConnectionError):
            await manager.unsubscribe_topics(topics)
        released = self._released(partition, replica, change.cause)
        for topic in topics:
            self._record(topic, released)

    def _released(self, partition: int, replica: int, cause: str) -> records.PartitionReleased:
        """This collector's ``PartitionReleased`` of ``partition``, naming the collectors
        its lease keeper last saw holding another replica of it (``others``)."""
        keeper = self._keeper
        return records.PartitionReleased(
            at=time.time(),
            partition=partition,
            collector_id=self.settings.collector_id,
            cause=cause,
            replica=replica,
            others=keeper.others_serving(partition) if keeper is not None else (),
        )

    def _not_served(self, causes: dict[str, str]) -> None:
        """Topics of held partitions this collector does not publish (the venue rejected
        them, or never answered their replay): each gets a ``PartitionReleased`` of its own
        (``cause``: why), so a consumer neither waits for them from here nor counts on this
        collector as a hot standby of them. Not retried here: the partition's next holder
        subscribes them afresh (handing it back for a topic the venue refuses for good would
        churn the lease every tick)."""
        lost = [t for t in causes if t in self._serving]
        if not lost:
            return
        logger.warning(
            "collector %s: %d topics not served: %s",
            self.settings.collector_id,
            len(lost),
            {t: causes[t] for t in lost[:5]},
        )
        for topic in lost:
            partition = self._serving.pop(topic)
            replica = self._slots.get(partition, 0)
            self._record(topic, self._released(partition, replica, causes[topic]))

    async def _give_up(self, event: GaveUp) -> None:
        """A shard was given up on: hand back the partitions of its topics, so that a
        collector (this one included, at a later tick) takes them afresh."""
        keeper = self._keeper
        assert keeper is not None
        for partition in sorted({self._serving[t] for t in event.topics if t in self._serving}):
            replica = self._slots.get(partition)
            if replica is not None:
                await keeper.give_up(Slot(partition, replica), f"connection gave up: {event.cause}")


class _Stopped(Exception):
    """Ends the collector's task group after a clean stop."""
