"""Checking clients' order books against the exchange simulator's ground truth.

``BookAudit(simulator.depth).check(book)`` compares a book the client reports valid with
the simulator's book at the update id the client reports, level by level (every price and
quantity of both sides): call it after every update of a valid book (an
``OrderBookMaintainer``'s ``on_update`` does exactly that), and no state of a book served
as valid escapes the check. A book that differs is counted as *served wrong*.

The audit keeps one :class:`~networkpype.demo.depth.TruthReplica` per symbol and moves it
forward with the client's book, so a check costs the updates since the last one plus two
dict comparisons. Use it on the simulator's loop (the same loop as the client's, or
marshalled there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from networkpype.demo.depth import TruthReplica
from networkpype.demo.depth_venue import DepthVenue

__all__ = ["AuditedBook", "BookAudit", "Mismatch"]

_KEPT_MISMATCHES = 20


class _Levels(Protocol):
    @property
    def update_id(self) -> int: ...
    @property
    def bid_levels(self) -> Mapping[float, float]: ...
    @property
    def ask_levels(self) -> Mapping[float, float]: ...


class AuditedBook(Protocol):
    """What the audit reads of a client's book (``networkpype.books.LiveBook`` has it)."""

    @property
    def symbol(self) -> str: ...
    @property
    def valid(self) -> bool: ...
    @property
    def order_book(self) -> _Levels: ...


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A book served as valid that was not: ``symbol`` at ``update_id``, and what differed
    (the first few levels)."""

    symbol: str
    update_id: int
    detail: str


@dataclass
class BookAudit:
    """``ids``: what a book's ``update_id`` counts: ``"update"`` (Binance's ids, ``U``/``u``)
    or ``"sequence"`` (one per update, ``seq``: the second plug-in style).

    Counts ``checks`` of valid books, ``served_wrong`` (checks that found a difference)
    and ``unverifiable`` (an update id the truth's history does not have: too old, or not
    where an update ends, which is wrong too and also counted in ``served_wrong``);
    ``wrong_books`` are the symbols ever served wrong; ``mismatches`` the first few."""

    venue: DepthVenue
    ids: Literal["update", "sequence"] = "update"
    checks: int = 0
    served_wrong: int = 0
    unverifiable: int = 0
    wrong_books: set[str] = field(default_factory=set)
    mismatches: list[Mismatch] = field(default_factory=list)
    _replicas: dict[str, TruthReplica] = field(default_factory=dict)

    def check(self, book: AuditedBook) -> bool:
        """True when ``book`` is not valid (nothing to check) or equals the truth at its
        update id; False (and counted) otherwise."""
        if not book.valid:
            return True
        levels = book.order_book
        update_id: int | None = levels.update_id
        self.checks += 1
        if self.ids == "sequence":
            update_id = self._update_id_of(book.symbol, levels.update_id)
        replica = None if update_id is None else self._replica(book.symbol, update_id)
        if update_id is None or replica is None or not replica.advance_to(update_id):
            self.unverifiable += 1
            self._wrong(book.symbol, levels.update_id, "no such id in the venue's history")
            self._replicas.pop(book.symbol, None)
            return False
        if replica.bids == levels.bid_levels and replica.asks == levels.ask_levels:
            return True
        self._wrong(book.symbol, levels.update_id, _difference(replica, levels))
        return False

    def _update_id_of(self, symbol: str, sequence: int) -> int | None:
        try:
            return self.venue.truth(symbol).update_id_of(sequence)
        except KeyError:
            return None

    @property
    def books_served_wrong(self) -> int:
        """Distinct books ever served wrong (the demo's verdict: must be 0)."""
        return len(self.wrong_books)

    def _replica(self, symbol: str, update_id: int) -> TruthReplica | None:
        replica = self._replicas.get(symbol)
        if replica is not None and replica.update_id <= update_id:
            return replica
        try:  # the first check, or a book that went back (a resync from an older id)
            replica = TruthReplica(self.venue.truth(symbol), update_id)
        except (KeyError, ValueError):
            return None
        self._replicas[symbol] = replica
        return replica

    def _wrong(self, symbol: str, update_id: int, detail: str) -> None:
        self.served_wrong += 1
        self.wrong_books.add(symbol)
        if len(self.mismatches) < _KEPT_MISMATCHES:
            self.mismatches.append(Mismatch(symbol, update_id, detail))


def _difference(replica: TruthReplica, levels: _Levels) -> str:
    parts: list[str] = []
    for name, truth, seen in (
        ("bid", replica.bids, levels.bid_levels),
        ("ask", replica.asks, levels.ask_levels),
    ):
        for price in sorted(set(truth) | set(seen)):
            if truth.get(price) != seen.get(price):
                parts.append(f"{name} {price}: venue {truth.get(price)}, book {seen.get(price)}")
    return "; ".join(parts[:4]) + (" ..." if len(parts) > 4 else "")
