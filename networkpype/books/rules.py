"""The venue plug-in: what differs between venues' order-book feeds, as a small protocol.

A venue's rules say which topic carries a symbol's diffs, how to ask for a snapshot over
REST (path, parameters, the throttler limit and its weight), how to read a diff and a
snapshot, how a diff relates to the book's last update id (already in it, next, or past a
gap) and, optionally, how to verify the book after an update (a checksum). Everything else
(buffering, joining snapshot and stream, invalidation, resync, pacing) is the library's and
the same for every venue. Plug-ins are pure: no I/O, no clock.

Two plug-ins ship: :class:`~networkpype.books.binance.BinanceSpotRules` (update-id ranges,
``U``/``u``) and :class:`~networkpype.books.sequenced.SequencedChecksumRules` (one sequence
number per message and a CRC32 of the top levels). ``docs/books.md`` shows how to write one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import msgspec

from networkpype.books.book import Level, OrderBook
from networkpype.books.errors import BookDataError

__all__ = [
    "Diff",
    "Relation",
    "Snapshot",
    "SnapshotRequest",
    "VenueRules",
    "consecutive",
    "parse_levels",
]


class Relation(Enum):
    """How a diff relates to the book's last update id."""

    STALE = "stale"
    """Everything it changes is in the book already (a duplicate, or older than the
    snapshot): drop it."""
    APPLY = "apply"
    """It is the next one: apply it."""
    GAP = "gap"
    """Updates are missing between the book and it: the book cannot follow."""


class Diff(msgspec.Struct, frozen=True):
    """One depth update: the update ids ``first_id..last_id`` it covers (equal for a venue
    that numbers messages), the levels it sets (quantity 0 removes a level), and the
    venue's checksum of the book after it, when the venue sends one."""

    first_id: int
    last_id: int
    bids: list[Level]
    asks: list[Level]
    checksum: int | None = None


class Snapshot(msgspec.Struct, frozen=True):
    """The book at ``update_id``, as the venue's REST endpoint answered it."""

    update_id: int
    bids: list[Level]
    asks: list[Level]
    checksum: int | None = None


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """A snapshot's REST request: ``GET {rest_url}{path}?{params}`` within the throttler's
    ``limit_id`` (declare it, with the venue's weight, in the throttler the ``RESTManager``
    shares; ``weight`` is informational)."""

    path: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    limit_id: str = "default"
    weight: int = 1


class VenueRules(Protocol):
    """A venue's order-book rules (see the module docstring). Implementations are pure
    and cheap: :meth:`parse_diff`, :meth:`relate` and :meth:`verify` run for every update."""

    name: str
    """Shown in log lines and statistics."""

    def topic(self, symbol: str) -> str:
        """The stream topic that carries ``symbol``'s diffs (``symbol`` is upper-case)."""
        ...

    def snapshot_request(self, symbol: str) -> SnapshotRequest:
        """The REST request for ``symbol``'s snapshot."""
        ...

    def parse_snapshot(self, payload: Any) -> Snapshot:
        """The decoded JSON answer of :meth:`snapshot_request` as a ``Snapshot``; raises
        ``BookDataError`` when it is not one."""
        ...

    def parse_diff(self, data: Any) -> Diff:
        """A decoded stream message as a ``Diff``; raises ``BookDataError`` when it is not
        one."""
        ...

    def relate(self, update_id: int, diff: Diff, *, bridging: bool) -> Relation:
        """How ``diff`` relates to a book at ``update_id``. ``bridging`` is true for the
        first diff after a snapshot (``update_id`` is the snapshot's): venues that number
        update ranges accept a diff that straddles the snapshot there."""
        ...

    def verify(self, book: OrderBook, checksum: int | None) -> str | None:
        """``None`` when ``book`` (just updated; ``checksum`` is the one the venue sent with
        the update or snapshot) is consistent, else the reason it is not. Venues without
        checksums return ``None``."""
        ...


def consecutive(update_id: int, diff: Diff) -> Relation:
    """The steady-state rule shared by most venues: a diff whose ``last_id`` is at most
    ``update_id`` is stale, one whose ``first_id`` is ``update_id + 1`` is next, any other
    leaves a gap."""
    if diff.last_id <= update_id:
        return Relation.STALE
    if diff.first_id == update_id + 1:
        return Relation.APPLY
    return Relation.GAP


def parse_levels(raw: Any, name: str) -> list[Level]:
    """``[[price, quantity], ...]`` (decimal strings or numbers) as floats; raises
    ``BookDataError`` naming ``name`` for anything else, a price that is not finite and
    positive, or a quantity that is not finite and at least 0."""
    try:
        levels = [(float(price), float(quantity)) for price, quantity in raw]
    except (TypeError, ValueError) as exc:
        raise BookDataError(
            f"{name}: expected [[price, quantity], ...] of decimal strings, got {_quote(raw)}"
        ) from exc
    for price, quantity in levels:
        # The comparisons are false for NaN: NaN is refused too.
        if not (0.0 < price < math.inf and 0.0 <= quantity < math.inf):
            raise BookDataError(
                f"{name}: level ({price!r}, {quantity!r}) needs a finite price > 0 and a "
                "finite quantity >= 0"
            )
    return levels


def require_int(payload: Mapping[str, Any], key: str, what: str) -> int:
    """``payload[key]`` as an ``int`` (not a bool); ``BookDataError`` otherwise."""
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BookDataError(f"{what}: {key!r} must be an integer, got {_quote(value)}")
    return value


def require_mapping(payload: Any, what: str) -> Mapping[str, Any]:
    """``payload`` when it is a JSON object; ``BookDataError`` otherwise."""
    if not isinstance(payload, Mapping):
        raise BookDataError(f"{what}: expected a JSON object, got {_quote(payload)}")
    return payload


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
