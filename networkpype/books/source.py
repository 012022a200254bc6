"""Where an order-book maintainer's diffs come from: the few methods it needs of a stream
of venue messages, and the one message a source adds (:class:`StreamBreak`).

A :class:`DiffSource` gives one stream per topic: the venue's messages
(``WebSocketResponse``, the diff in ``data``) in order with what breaks the stream, each
before the first message after it: the library's ``Disconnected``/``Reconnected``/
``MessagesDropped``/``GaveUp`` events, or a :class:`StreamBreak` saying in the source's
own words that messages of the topic may be missing. Whatever else a stream carries is
ignored.

Two sources ship: :class:`ShardedSource` (a ``ShardedWebSocketManager``: topics subscribed
at the venue; what ``OrderBookMaintainer`` makes of a manager it is given) and
``networkpype.bus.BusDiffSource`` (the market-data bus: collectors subscribe, the source
only reads).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol

import msgspec

from networkpype.websocket.sharded import ShardedWebSocketManager

__all__ = ["DiffSource", "ShardedSource", "StreamBreak"]


class StreamBreak(msgspec.Struct, frozen=True, tag_field="event", tag=True):
    """Messages of ``topic`` may be missing before the next one: ``reason`` says which
    (a book following the topic is not valid from here and resyncs)."""

    topic: str
    reason: str


class DiffSource(Protocol):
    """What ``OrderBookMaintainer`` reads its diffs from (see the module docstring)."""

    def stream(self, topic: str) -> AsyncIterator[Any]:
        """``topic``'s messages with its breaks, from now on (made before the topic is
        subscribed, so that nothing falls between)."""
        ...

    async def subscribe_topics(self, topics: Iterable[str]) -> Mapping[str, str]:
        """Have ``topics``' messages flow; the refused ones, with the reason."""
        ...

    async def unsubscribe_topics(self, topics: Iterable[str]) -> None:
        """Stop ``topics``' messages (their streams end)."""
        ...

    def shard_of(self, topic: str) -> str | None:
        """The connection that carries ``topic`` now, None if none does (a topic held by
        a source returns a shard: ``RotationFinished`` checks it)."""
        ...

    def unclaimed(self) -> AsyncIterator[Any] | None:
        """What no topic's stream claims, to be read and counted so that it does not fill
        up; None when the source has no such stream."""
        ...


class ShardedSource:
    """A ``ShardedWebSocketManager`` as a :class:`DiffSource`: streams, subscriptions and
    shards are the manager's; its merged stream is the unclaimed one."""

    __slots__ = ("manager",)

    def __init__(self, manager: ShardedWebSocketManager) -> None:
        self.manager = manager

    def stream(self, topic: str) -> AsyncIterator[Any]:
        return self.manager.stream(topic)

    async def subscribe_topics(self, topics: Iterable[str]) -> Mapping[str, str]:
        return (await self.manager.subscribe_topics(topics)).rejected

    async def unsubscribe_topics(self, topics: Iterable[str]) -> None:
        await self.manager.unsubscribe_topics(topics)

    def shard_of(self, topic: str) -> str | None:
        return self.manager.shard_of(topic)

    def unclaimed(self) -> AsyncIterator[Any]:
        return self.manager.iter_messages()
