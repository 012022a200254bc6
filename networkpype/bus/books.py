"""``BusDiffSource``: order books fed from the market-data bus.

An ``OrderBookMaintainer`` given a ``BusDiffSource`` follows each book's topic with
``BusConsumer.stream(topic)`` instead of a socket; snapshots still come over REST from the
venue, through the maintainer's ``RESTManager`` and its throttler, as with a socket. The
collectors subscribe the topics, so subscribing here only opens the streams.

What breaks a book on the bus, in order with the data, before the first diff after it:

* ``Disconnected``/``Reconnected``/``MessagesDropped`` a collector published (its venue
  connection broke, or its queue dropped messages): passed on as they are;
* a :class:`~networkpype.bus.records.SequenceGap` (messages of the topic the bus does not
  hold: a collector killed or cut off, a drop at the venue), a ``PublishDropped`` (a
  collector's buffer overflowed while NATS was away), a ``GaveUp`` (a collector's connection
  given up) or a ``PartitionReleased`` with no other collector serving the partition (the
  diffs after it may be missed until another one takes over): a
  :class:`~networkpype.books.source.StreamBreak` saying which.

``Connected``, ``PartitionAcquired`` and rotation records break nothing (a take-over's
missing messages come as a ``SequenceGap``; a rotation is make-before-break, de-duplicated),
nor does a ``PartitionReleased`` while a hot standby (``others``) goes on publishing the
partition: what it might miss would come as a ``SequenceGap``, and a standby that dies
with it is a collector killed without a word (its successor's first message is a gap).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from networkpype.books.source import StreamBreak
from networkpype.bus.consumer import BusConsumer, BusResponse
from networkpype.bus.records import (
    PartitionAcquired,
    PartitionReleased,
    PublishDropped,
    SequenceGap,
)
from networkpype.protocol import events

__all__ = ["BusDiffSource"]

_PASSED = (events.Disconnected, events.Reconnected, events.MessagesDropped)
_HARMLESS = (events.Connected, events.RotationStarted, events.RotationFinished, PartitionAcquired)


def as_break(topic: str, record: Any, gone: AbstractSet[str] = frozenset()) -> StreamBreak | None:
    """What a record means to ``topic``'s book: a break, or None (nothing missed).

    ``gone``: the collectors this topic's stream has seen release its partition (and not
    take it again since); a ``PartitionReleased`` whose ``others`` are all gone breaks the
    book (every replica stopped: a whole deployment restarting, say)."""
    match record:
        case SequenceGap(after=after, missed=missed):
            reason = f"{missed} messages after sequence {after} are not on the bus"
        case PublishDropped(collector_id=collector, count=count):
            reason = f"collector {collector} dropped {count} messages before the bus"
        case events.GaveUp(connection_id=shard, cause=cause):
            reason = f"{shard} given up: {cause}"
        case PartitionReleased(others=others) if set(others) - gone:
            return None  # a hot standby goes on publishing the partition
        case PartitionReleased(collector_id=collector, partition=partition, cause=cause):
            reason = f"collector {collector} released partition {partition}: {cause}"
        case _ if isinstance(record, _HARMLESS):
            return None
        case _:
            reason = f"unexpected record on the bus: {type(record).__name__}"
    return StreamBreak(topic, reason)


class BusDiffSource:
    """The diff source of an ``OrderBookMaintainer`` over ``consumer`` (connected; its
    ``stream(topic)`` serves each book). Make the consumer for the books alone, without a
    ``durable`` name and with ``deliver="new"``: a book starts from a fresh snapshot anyway,
    so what the bus held before is of no use to it."""

    __slots__ = ("consumer",)

    def __init__(self, consumer: BusConsumer) -> None:
        self.consumer = consumer

    async def stream(self, topic: str) -> AsyncIterator[Any]:
        gone: set[str] = set()  # collectors seen releasing this topic's partition
        async for item in self.consumer.stream(topic):
            if isinstance(item, (BusResponse, *_PASSED)):
                yield item
                continue
            if type(item) is PartitionAcquired:
                gone.discard(item.collector_id)
            broken = as_break(topic, item, gone)
            if type(item) is PartitionReleased:
                gone.add(item.collector_id)
            if broken is not None:
                yield broken

    async def subscribe_topics(self, topics: Iterable[str]) -> Mapping[str, str]:
        """Nothing to subscribe: the collectors do. Refuses nothing."""
        return {}

    async def unsubscribe_topics(self, topics: Iterable[str]) -> None:
        """Nothing to unsubscribe (a removed book's stream closes with its follower)."""

    def shard_of(self, topic: str) -> str | None:
        """None: no connection of this process carries a topic."""
        return None

    def unclaimed(self) -> None:
        """None: every message read is a book's."""
