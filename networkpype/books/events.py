"""What an order-book maintainer tells its consumer: a book stopped being valid, or is
valid again. Frozen, tagged msgspec Structs (tag field ``event``, like the connection
events of :mod:`networkpype.protocol.events`).

Times: ``at`` is Unix time (seconds) for display; ``invalid_for`` is measured with the
monotonic clock.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

__all__ = ["BookEvent", "BookInvalid", "BookResynced"]


class _BookEvent(msgspec.Struct, frozen=True, tag_field="event", tag=True, kw_only=True):
    symbol: str
    at: float


class BookInvalid(_BookEvent, frozen=True):
    """The book of ``symbol`` is not valid any more, from this moment: ``reason`` says why
    (a sequence gap, a disconnect, dropped messages, a checksum mismatch...). It was last
    valid at ``update_id``. A resync has begun."""

    reason: str
    update_id: int


class BookResynced(_BookEvent, frozen=True):
    """The book of ``symbol`` is valid again at ``update_id`` after ``invalid_for`` seconds
    (``first``: its first sync since it was added). ``resyncs`` counts its resyncs so far
    (the first sync not included), ``snapshots`` the snapshots it took to get here."""

    update_id: int
    invalid_for: float
    resyncs: int
    snapshots: int
    first: bool = False


BookEvent: TypeAlias = BookInvalid | BookResynced
