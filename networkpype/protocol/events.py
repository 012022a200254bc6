"""Lifecycle events delivered to consumers in order with the messages.

A consumer that asks for them (``iter_messages(events=True)``, ``receive(events=True)``)
sees, on the same stream as the data: ``Connected`` when a connection opens for the first
time, ``Disconnected`` (with the cause) when it breaks, ``Reconnected`` (with the downtime)
when the supervisor has it open again — its subscriptions are being replayed right after —
and ``GaveUp`` when the supervisor stopped retrying; the stream then ends with
``GaveUpError`` (a sharded manager's merged stream goes on with its other connections, by
default). Everything received before a ``Disconnected`` was delivered before it, so an
order-book consumer knows exactly where to resync. A sharded manager adds
``RotationStarted``/``RotationFinished`` around a make-before-break replacement and
``TopicsLost`` for topics it will not subscribe again on its own.

Times: ``at`` is Unix time (seconds) for display; ``downtime`` is measured with the monotonic
clock.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

__all__ = [
    "Connected",
    "ConnectionEvent",
    "Disconnected",
    "GaveUp",
    "MessagesDropped",
    "Reconnected",
    "RotationFinished",
    "RotationStarted",
    "TopicsLost",
]


class _Event(msgspec.Struct, frozen=True, tag_field="event", tag=True, kw_only=True):
    connection_id: str
    at: float


class Connected(_Event, frozen=True):
    """The connection opened for the first time."""

    url: str


class Disconnected(_Event, frozen=True):
    """The connection broke. ``cause`` is one readable line, ``error`` its class name;
    ``code`` the close code when a close frame arrived."""

    cause: str
    error: str
    code: int | None = None


class Reconnected(_Event, frozen=True):
    """The connection is open again after ``downtime`` seconds and ``attempts`` tries;
    recorded subscriptions are replayed next."""

    url: str
    downtime: float
    attempts: int = 1


class GaveUp(_Event, frozen=True):
    """The supervisor stopped restarting the connection; ``cause`` says why. ``topics`` are
    the topics it carried (a sharded manager's; empty otherwise): their data will not come
    back unless they are subscribed again."""

    cause: str
    topics: tuple[str, ...] = ()


class MessagesDropped(_Event, frozen=True):
    """``count`` messages were dropped by a ``drop_oldest`` consumer queue since the last
    such event."""

    count: int


class RotationStarted(_Event, frozen=True):
    """``connection_id`` nears its maximum age: ``replacement`` is open and subscribing to the
    same ``topics``. Until ``RotationFinished``, both deliver: messages may arrive twice (they
    are removed when the manager has a ``dedup_key``, until the replacement has caught up)."""

    replacement: str
    topics: tuple[str, ...] = ()


class RotationFinished(_Event, frozen=True):
    """``connection_id`` is closed; ``replacement`` carries its topics alone.
    ``duplicates_removed`` counts messages dropped by ``dedup_key`` since the previous
    ``RotationFinished`` of the stream (copies that a replacement lagging behind delivers
    after this event are still dropped, and counted in the next one).
    ``aborted``: the replacement failed before taking over (it is closed, and
    ``connection_id`` goes on carrying its topics)."""

    replacement: str
    duplicates_removed: int = 0
    aborted: bool = False


class TopicsLost(_Event, frozen=True):
    """The manager will not subscribe ``topics`` again on its own (a sharded manager's): the
    venue rejected them, or never acknowledged them within the retries. ``reason`` is one
    readable line. They are out of the replay record; subscribe them again to retry."""

    topics: tuple[str, ...]
    reason: str


ConnectionEvent: TypeAlias = (
    Connected
    | Disconnected
    | Reconnected
    | GaveUp
    | MessagesDropped
    | RotationStarted
    | RotationFinished
    | TopicsLost
)
