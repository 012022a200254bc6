"""A topic's shared event feed for the exchange simulator: one paced producer per topic,
fanned out to every connection subscribed to it, numbered by a per-topic sequence.

Like a venue's market, a feed runs whether or not anyone listens: once a topic has been
subscribed by anyone, it produces an event every ``1 / rate`` seconds until it has produced
``max_events`` (or the simulator stops). Each event takes the next sequence number of its
topic, so a client that drops, reconnects and resubscribes sees the sequence jump by exactly
the number of events produced while it was not subscribed. Events nobody is subscribed to
are counted but never built or encoded.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

import msgspec

from networkpype.demo.frames import frame
from networkpype.demo.market import SyntheticMarket, topic_kind

__all__ = ["FeedSubscriber", "TopicFeed"]

_YIELD_EVERY = 64  # a feed catching up yields to the loop this often (fairness)

_encode = msgspec.json.Encoder().encode


class FeedSubscriber(Protocol):
    """What a feed sends to: a connection that takes a pre-built frame without awaiting."""

    @property
    def connection_id(self) -> int: ...

    def deliver(self, data: bytes) -> bool:
        """Write one event frame; ``False`` if the connection could not take it."""
        ...


class TopicFeed:
    """The event feed of one topic (``<symbol>@trade`` or ``<symbol>@depth...``).

    ``rate`` is events per second (finite, positive); events are evenly spaced on the
    monotonic clock from the moment :meth:`run` starts, and a late loop catches up with a
    burst rather than drifting. :meth:`run` is the producer; its caller owns the task.
    """

    def __init__(
        self, topic: str, market: SyntheticMarket, *, rate: float, max_events: int
    ) -> None:
        kind = topic_kind(topic)
        if kind is None:
            raise ValueError(f"unknown topic format {topic!r}")
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of events a second, not {rate}")
        self.topic = topic
        self.rate = rate
        self.max_events = max_events
        self._make = market.trade if kind == "trade" else market.depth
        self.subscribers: dict[int, FeedSubscriber] = {}
        self.last_sequence = 0
        self.last_sequence_sent = 0

    def subscribe(self, subscriber: FeedSubscriber) -> None:
        """Send ``subscriber`` every event produced from now on (idempotent)."""
        self.subscribers[subscriber.connection_id] = subscriber

    def unsubscribe(self, subscriber: FeedSubscriber) -> None:
        """Send ``subscriber`` nothing more (idempotent); takes effect before any await."""
        self.subscribers.pop(subscriber.connection_id, None)

    async def run(self) -> None:
        """Produce ``max_events`` events at ``rate``, then return."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate
        start = loop.time()
        for seq in range(1, self.max_events + 1):
            delay = start + (seq - 1) * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif seq % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a late loop catches up, but not all in one step
            self.last_sequence = seq
            if not self.subscribers:
                continue  # produced for nobody: the sequence still advances
            event = self._make()
            event["stream"] = self.topic
            event["seq"] = seq
            data = frame(_encode(event))
            sent = False
            for subscriber in list(self.subscribers.values()):
                sent = subscriber.deliver(data) or sent
            if sent:
                self.last_sequence_sent = seq
