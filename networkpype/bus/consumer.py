"""``BusConsumer``: the library's consuming API over a durable JetStream consumer.

``iter_messages(events=True)`` yields what a local ``ShardedWebSocketManager`` would: each
venue message as a :class:`BusResponse` (a ``WebSocketResponse``: ``data`` decoded as with
``decoder=``), and with ``events=True`` the collectors' records in order with the data,
each once (a collector publishes a connection's record on each of its topics):
``Disconnected``/``Reconnected``/``GaveUp`` (``connection_id`` names the collector and its
shard), ``PartitionAcquired``/``PartitionReleased``, ``PublishDropped``, and the
consumer's own :class:`~networkpype.bus.records.SequenceGap` where a topic's sequence
numbers jump: exactly the messages the bus does not hold. ``stream(topic)`` gives one
topic's messages, records always included, from a durable consumer of its own.

Acknowledgement: a message is acknowledged once the consumer asked for the next one (it
was processed), or at :meth:`BusConsumer.disconnect` for the last one handed out (as a
local manager's consumer, a ``break`` loses nothing: what was handed out counts as taken).
A durable consumer that restarts after a clean ``disconnect()`` resumes right after the last
message handed out: nothing lost, nothing twice. After a crash (SIGKILL), the messages
delivered since the last acknowledgement come again, in order, marked ``redelivered=True``
(those the crashed reader had handed out among them are the application's duplicates);
nothing is lost. A durable name is for one reading process at a time.

Each topic's sequence state starts empty at every start of the consumer: the first message
of a topic after a start is not checked against the one before. A message whose sequence
number is not above the last one delivered for its topic (a late duplicate, which JetStream's
de-duplication window did not catch) is not delivered; ``statistics().stale`` counts them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from networkpype.bus import records
from networkpype.bus._nats import DEFAULT_NATS_URL, StreamSettings, connect, ensure_stream
from networkpype.bus._pull import PullReader, PullSettings, delivery
from networkpype.protocol.errors import ConfigurationError, NotConnectedError
from networkpype.wire.decoding import DecoderSpec, make_decoder
from networkpype.wire.processor import WebSocketPostProcessor
from networkpype.wire.response import WebSocketResponse

__all__ = ["BusConsumer", "BusResponse", "ConsumerStatistics"]

logger = logging.getLogger(__name__)

_RECENT_RECORDS = 4096  # records remembered to show each once


@dataclass(slots=True)
class BusResponse(WebSocketResponse):
    """A venue message read from the bus. ``topic``; ``seq``: the venue's sequence number
    (None where it has none); ``stream_seq``: its position in the JetStream stream;
    ``redelivered``: handed out before, to a consumer that did not acknowledge it (a
    crash); ``received_ns``: the collector's ``Np-Received`` stamp (Unix ns) if it set one."""

    topic: str = ""
    seq: int | None = None
    stream_seq: int = 0
    redelivered: bool = False
    received_ns: int | None = None


@dataclass(frozen=True, slots=True)
class ConsumerStatistics:
    """A snapshot: ``messages`` and ``records`` handed out, ``gaps`` (SequenceGap records
    made) and the ``missed`` messages they cover, ``stale`` messages not delivered,
    ``redelivered`` ones, ``undecodable`` records skipped."""

    messages: int
    records: int
    gaps: int
    missed: int
    stale: int
    redelivered: int
    undecodable: int


class BusConsumer:
    """Reads ``venue``'s messages from the bus. ``durable``: the name of the durable
    consumer (resumes where it left off; None: an ephemeral one, from ``deliver``);
    ``deliver``: ``"all"`` (from the stream's start) or ``"new"`` for a consumer created
    now; ``batch``: messages per fetch; ``ack_wait``: seconds JetStream waits for an
    acknowledgement before delivering again (a slower consumer sees redeliveries);
    ``decoder``/``post_processors``: as ``WebSocketManager``'s; ``stream``: the bus's
    stream (default ``StreamSettings()``; the collectors' must match).

    ``await connect()`` first (``BusUnavailableError`` if NATS cannot be reached within
    ``connect_deadline`` seconds), ``await disconnect()`` last.
    """

    def __init__(
        self,
        venue: str,
        *,
        nats_urls: Sequence[str] = (DEFAULT_NATS_URL,),
        durable: str | None = None,
        stream: StreamSettings | None = None,
        deliver: str = "all",
        batch: int = 256,
        ack_wait: float = 30.0,
        decoder: DecoderSpec = None,
        post_processors: list[WebSocketPostProcessor] | None = None,
        connect_deadline: float = 30.0,
    ) -> None:
        try:
            records.check_name("venue", venue)
            if durable is not None:
                records.check_name("durable", durable)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if deliver not in ("all", "new"):
            raise ConfigurationError(f"deliver={deliver!r}: use 'all' or 'new'")
        if batch < 1 or not ack_wait > 0:
            raise ConfigurationError("batch must be at least 1 and ack_wait > 0 s")
        self._venue = venue
        self._urls = tuple(nats_urls)
        self._durable = durable
        self._stream = stream or StreamSettings()
        self._deliver = deliver
        self._batch = batch
        self._ack_wait = ack_wait
        self._decoder = make_decoder(decoder)
        self._post_processors = list(post_processors or [])
        self._deadline = connect_deadline
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._readers: list[PullReader] = []
        self._messages = self._records = self._gaps = self._missed = 0
        self._stale = self._redelivered = self._undecodable = 0

    async def connect(self) -> None:
        """Connect to NATS (the stream is created if missing)."""
        self._nc = await connect(
            self._urls,
            name=f"networkpype-consumer {self._durable or ''}",
            deadline=self._deadline,
            on_reconnected=self._reconnected,
        )
        self._js = self._nc.jetstream()
        await ensure_stream(self._js, self._stream)

    async def _reconnected(self) -> None:
        for reader in self._readers:
            reader.reconnected()

    async def disconnect(self) -> None:
        """Acknowledge every message handed out, then close. Idempotent."""
        readers, self._readers = self._readers, []
        for reader in readers:
            await reader.close()
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    def statistics(self) -> ConsumerStatistics:
        """A frozen snapshot."""
        return ConsumerStatistics(
            self._messages,
            self._records,
            self._gaps,
            self._missed,
            self._stale,
            self._redelivered,
            self._undecodable,
        )

    def iter_messages(self, *, events: bool = False) -> AsyncIterator[Any]:
        """Every message of the venue, in the stream's order; with ``events=True`` the
        records too (see the module docstring)."""
        name = self._durable
        subject = records.venue_filter(self._stream.prefix, self._venue)
        return self._read(subject, name, events)

    def stream(self, topic: str) -> AsyncIterator[Any]:
        """``topic``'s messages alone, with its records (always: a per-topic consumer must
        know where its data has holes), from a consumer of its own (durable when the
        ``BusConsumer`` is: named after ``durable`` and the topic)."""
        name = None
        if self._durable is not None:
            name = f"{self._durable}_{hashlib.blake2b(topic.encode(), digest_size=6).hexdigest()}"
        subject = records.subject_for(self._stream.prefix, self._venue, topic)
        return self._read(subject, name, True)

    async def _read(self, subject: str, name: str | None, events: bool) -> AsyncIterator[Any]:
        js = self._js
        if js is None:
            raise NotConnectedError("call connect() before reading")
        assert self._nc is not None
        settings = PullSettings(self._stream.name, self._batch, self._ack_wait, self._deliver)
        reader = PullReader(self._nc, js, settings, subject, name)
        await reader.open()
        self._readers.append(reader)
        last_seq: dict[str, int] = {}
        recent: dict[Any, None] = {}  # records shown lately, oldest first
        decode_text = self._decoder.decode_text
        post = self._post_processors
        prefix_len = len(records.venue_filter(self._stream.prefix, self._venue)) - 1
        try:
            while True:
                batch = await reader.next_batch()
                for msg in batch:
                    headers = msg.headers or {}
                    delivered, stream_seq = delivery(msg.reply)
                    redelivered = delivered > 1 or stream_seq <= reader.redelivered_up_to
                    token = msg.subject[prefix_len:]
                    if headers.get(records.HEADER_KIND) == records.KIND_RECORD:
                        try:
                            record = records.decode_record(msg.data)
                        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                            self._undecodable += 1
                            logger.warning("consumer: a record it cannot read: %s", exc)
                            reader.handed(msg)
                            continue
                        reader.handed(msg)
                        if events and record not in recent:
                            # A collector publishes a connection's record on each of its
                            # topics: the merged stream shows it once (the first copy
                            # precedes every topic's data after it).
                            recent[record] = None
                            if len(recent) > _RECENT_RECORDS:
                                del recent[next(iter(recent))]
                            self._records += 1
                            yield record
                        continue
                    topic = records.topic_of_token(token)
                    seq_text = headers.get(records.HEADER_SEQ)
                    seq = int(seq_text) if seq_text is not None else None
                    if seq is not None:
                        last = last_seq.get(topic)
                        if last is not None and seq <= last:
                            self._stale += 1
                            reader.handed(msg)
                            continue
                        last_seq[topic] = seq
                        if last is not None and seq > last + 1:
                            self._gaps += 1
                            self._missed += seq - last - 1
                            if events:
                                self._records += 1
                                yield records.SequenceGap(
                                    at=time.time(), topic=topic, after=last, missed=seq - last - 1
                                )
                    received = headers.get(records.HEADER_RECEIVED)
                    response = BusResponse(
                        decode_text(msg.data),
                        topic,
                        seq,
                        stream_seq,
                        redelivered,
                        int(received) if received is not None else None,
                    )
                    for processor in post:
                        response = await processor.post_process(response)  # type: ignore[assignment]
                    self._messages += 1
                    self._redelivered += redelivered
                    reader.handed(msg)
                    yield response
        finally:
            await reader.close()
