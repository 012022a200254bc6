"""Frozen snapshots of the demo server's and the exchange simulator's counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CloseInitiator",
    "DemoConnectionStatistics",
    "DemoServerStatistics",
    "ExchangeConnectionStatistics",
    "ExchangeSimulatorStatistics",
    "TopicStatistics",
    "Violation",
]


@dataclass(frozen=True, slots=True)
class DemoConnectionStatistics:
    """A snapshot of one accepted WebSocket connection.

    ``messages_received`` counts the data frames (text and binary) the client sent;
    ``messages_sent`` the data frames the server sent (replies, echoes and events).
    """

    connection_id: int
    path: str
    handshake_headers: Mapping[str, str]
    messages_received: int
    messages_sent: int
    subscriptions: tuple[str, ...]
    open: bool


@dataclass(frozen=True, slots=True)
class DemoServerStatistics:
    """A snapshot of the server's counters, in accept order."""

    connections_accepted: int
    connections: tuple[DemoConnectionStatistics, ...]
    last_handshake_headers: Mapping[str, str]

    @property
    def connections_open(self) -> int:
        """How many of the accepted connections are still open."""
        return sum(1 for c in self.connections if c.open)

    @property
    def messages_received(self) -> dict[int, int]:
        """Data frames received from the client, per connection id."""
        return {c.connection_id: c.messages_received for c in self.connections}


# -- the exchange simulator -------------------------------------------------------------------

CloseInitiator = Literal["server", "client", "abort", "lost"]
"""Who ended a connection: ``server``, the simulator with a close frame; ``client``, the
client with one; ``abort``, the simulator without one (``kill_all``, a slow consumer);
``lost``, the client without one (EOF or reset)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """An incoming-rate violation: the connection sent ``messages_in_window`` frames (more
    than ``limit``; data, pings and pongs) within ``window`` seconds, and the simulator closed
    it with 1008. ``age`` is seconds since its handshake when the offending frame arrived."""

    connection_id: int
    messages_in_window: int
    limit: int
    window: float
    age: float
    frame_type: str


@dataclass(frozen=True, slots=True)
class ExchangeConnectionStatistics:
    """A snapshot of one connection accepted by the exchange simulator.

    ``messages_received`` counts every frame the rate limit counts (text, binary, ping, pong);
    ``messages_sent`` every data frame the simulator sent (replies and events), of which
    ``events_sent`` were events. ``age`` is seconds from the handshake to now (to the close
    if closed). ``close_code``/``close_reason`` are the code and reason of the close frame
    that ended it (the simulator's, or the client's when ``closed_by == "client"``), 1006 when
    it ended without one (``abort``, ``lost``), ``None`` while open.
    """

    connection_id: int
    open: bool
    age: float
    subscriptions: tuple[str, ...]
    messages_received: int
    messages_sent: int
    events_sent: int
    pings_sent: int
    pongs_received: int
    stalled: bool
    close_code: int | None
    close_reason: str
    closed_by: CloseInitiator | None
    violation: Violation | None


@dataclass(frozen=True, slots=True)
class TopicStatistics:
    """One topic's shared feed. ``last_sequence`` is the newest event produced (whether or
    not anyone was subscribed to receive it); ``last_sequence_sent`` the newest sent to at
    least one connection (0: none yet); ``subscribers`` the connections subscribed now."""

    topic: str
    last_sequence: int
    last_sequence_sent: int
    subscribers: int


@dataclass(frozen=True, slots=True)
class ExchangeSimulatorStatistics:
    """A snapshot of the exchange simulator's counters; connections in accept order.

    ``http_429_sent`` counts handshakes refused for the attempt limit or ``refuse_for``;
    ``http_503_sent`` those refused after the lifetime ended; ``connections_aborted`` the
    connections ended by ``kill``/``kill_all`` or for exceeding the send buffer (slow
    consumers); ``attempts_refused`` the 429s of the attempt limit alone (``refuse_for``'s
    are not counted): like ``violations``, a limit the client broke.
    """

    connections_accepted: int
    connections_active: int
    connections_aborted: int
    violations: int
    http_429_sent: int
    http_503_sent: int
    connections: tuple[ExchangeConnectionStatistics, ...]
    topics: Mapping[str, TopicStatistics]
    attempts_refused: int = 0

    @property
    def last_sequences(self) -> dict[str, int]:
        """Per topic, the last sequence number sent to any connection."""
        return {t.topic: t.last_sequence_sent for t in self.topics.values()}

    @property
    def subscriptions(self) -> dict[int, tuple[str, ...]]:
        """Per connection id, its subscriptions (empty once closed)."""
        return {c.connection_id: c.subscriptions for c in self.connections}

    @property
    def violation_details(self) -> tuple[Violation, ...]:
        """Every incoming-rate violation, in connection order."""
        return tuple(c.violation for c in self.connections if c.violation is not None)
