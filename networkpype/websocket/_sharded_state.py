"""The sharded manager's records (shards, streams) and statistics: plain data, and the
snapshot and log functions. Public names are re-exported by ``networkpype.websocket.sharded``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import msgspec

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import GaveUpError
from networkpype.websocket.codec import Reply
from networkpype.wire.connection import WebSocketConnection
from networkpype.wire.request import WebSocketRequest

__all__ = [
    "ConnectionStatistics",
    "ShardedStatistics",
    "SubscribeResult",
    "SubscriptionStatistics",
    "Wait",
    "log_statistics",
    "snapshot",
]

logger = logging.getLogger("networkpype.websocket.sharded")


class SubscribeResult(msgspec.Struct, frozen=True):
    """``accepted`` topics (acknowledged, or already subscribed) and ``rejected`` ones with
    the venue's reason (or a timeout)."""

    accepted: tuple[str, ...]
    rejected: dict[str, str]


class ConnectionStatistics(msgspec.Struct, frozen=True):
    """One shard: ``state`` is ``open``, ``down`` (being restarted) or ``gave_up`` (its
    supervisor gave up: its ``topics`` are lost; listed until ``disconnect()``); times in
    seconds; ``last_recv_time`` is Unix time (0.0 before any data)."""

    connection_id: str
    state: str
    uptime: float
    topics: int
    restarts: int
    last_error: str | None
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int
    last_recv_time: float


class SubscriptionStatistics(msgspec.Struct, frozen=True):
    """One topic: the shard carrying it; ``messages`` counted when a stream routes it."""

    topic: str
    connection_id: str
    messages: int


class ShardedStatistics(msgspec.Struct, frozen=True):
    connections: tuple[ConnectionStatistics, ...]
    subscriptions: tuple[SubscriptionStatistics, ...]
    queue_depth: int
    dropped: int


Wait: TypeAlias = tuple[
    list[str], WebSocketRequest, asyncio.Future[Reply], asyncio.Future[None] | None
]
"""A subscription sent: its topics, its request, its reply, its write (None: sent by the
replay of a connection that is down)."""


@dataclass(eq=False, slots=True)
class Shard:
    """One connection of a sharded manager (a connection of its manager actor)."""

    id: str
    connection: WebSocketConnection
    topics: dict[str, WebSocketRequest] = field(default_factory=dict)  # topic -> its request
    raw: list[WebSocketRequest] = field(default_factory=list)
    gave_up: GaveUpError | None = None  # set when the manager goes on without it
    rotating: bool = False  # being replaced (make-before-break): no new topics go to it
    # The incarnation (connection.opened_at) whose subscriptions are confirmed or watched:
    # a later one is a reconnection whose replay's answers are awaited.
    watched: float = 0.0

    @property
    def load(self) -> int:
        return len(self.topics) + len(self.raw)


@dataclass(eq=False)
class Stream:
    queue: DeliveryQueue[Any]
    messages: int = 0


def snapshot(
    shards: Iterable[Shard],
    streams: dict[str, Stream],
    queue: DeliveryQueue[Any],
    restarts: dict[str, int],
) -> ShardedStatistics:
    """A frozen snapshot of every connection and subscription; ``restarts`` per shard id.
    A shard given up on is listed, its topics are not subscriptions any more."""
    connections: list[ConnectionStatistics] = []
    subscriptions: list[SubscriptionStatistics] = []
    for shard in shards:
        conn = shard.connection
        connections.append(
            ConnectionStatistics(
                connection_id=shard.id,
                state=_state(shard),
                uptime=time.monotonic() - conn.opened_at if conn.connected else 0.0,
                topics=shard.load,
                restarts=restarts.get(shard.id, 0),
                last_error=conn.last_error,
                messages_in=conn.messages_in,
                bytes_in=conn.bytes_in,
                messages_out=conn.messages_out,
                bytes_out=conn.bytes_out,
                last_recv_time=conn.last_recv_time,
            )
        )
        if shard.gave_up is None:
            subscriptions.extend(
                SubscriptionStatistics(
                    topic=topic,
                    connection_id=shard.id,
                    messages=streams[topic].messages if topic in streams else 0,
                )
                for topic in shard.topics
            )
    return ShardedStatistics(
        connections=tuple(connections),
        subscriptions=tuple(subscriptions),
        queue_depth=len(queue),
        dropped=queue.dropped,
    )


def _state(shard: Shard) -> str:
    if shard.gave_up is not None:
        return "gave_up"
    return "open" if shard.connection.connected else "down"


def log_statistics(stats: ShardedStatistics) -> None:
    """One INFO line per connection, and one for the queue."""
    for c in stats.connections:
        logger.info(
            "%s %s up %.0f s, %d topics, %d restarts, in %d msgs / %d B, out %d msgs, "
            "last error %s",
            c.connection_id,
            c.state,
            c.uptime,
            c.topics,
            c.restarts,
            c.messages_in,
            c.bytes_in,
            c.messages_out,
            c.last_error,
        )
    logger.info("queue depth %d, dropped %d", stats.queue_depth, stats.dropped)
