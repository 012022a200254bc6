"""Frozen snapshots of the demo server's counters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ConnectionStatistics", "DemoServerStatistics"]


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
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
    connections: tuple[ConnectionStatistics, ...]
    last_handshake_headers: Mapping[str, str]

    @property
    def connections_open(self) -> int:
        """How many of the accepted connections are still open."""
        return sum(1 for c in self.connections if c.open)

    @property
    def messages_received(self) -> dict[int, int]:
        """Data frames received from the client, per connection id."""
        return {c.connection_id: c.messages_received for c in self.connections}
