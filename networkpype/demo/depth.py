"""Ground-truth order books for the exchange simulator, pure (no I/O, no clock).

``DepthTruth`` is the venue's own book of one symbol: levels on a tick grid (0.01) around
a seeded random-walk mid price, at most ``levels`` per side. Each :meth:`~DepthTruth.step`
changes some levels (new quantities, levels that leave or enter the window around the mid)
and gives them Binance-style update ids: a step that changes ``n`` levels covers the ids
``U = last + 1`` to ``u = last + n``. Every step is kept in a bounded history with the
quantities before and after, so that the book can be rebuilt at any kept update id:
forward (:class:`TruthReplica`, what a checker compares a client's book with) or backward
(:meth:`DepthTruth.levels_at`, what a stale snapshot serves).

Prices and quantities are sent as decimal strings with 8 decimals, built from integers
(ticks of 0.01, lots of 0.001): the float a client parses from the string is the float
``ticks / 100`` (``lots / 1000``) the replica uses, exactly.
"""

from __future__ import annotations

import functools
import random
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECKSUM_DEPTH",
    "DepthTruth",
    "TruthReplica",
    "TruthStep",
    "checksum_of",
    "lots_text",
    "price_text",
]

CHECKSUM_DEPTH = 10
"""Levels per side in each update's checksum (``"c"``)."""

_ZERO = "0.00000000"
_MOVES = (-2, -1, -1, 0, 0, 0, 1, 1, 2)  # ticks the mid moves in one update
_MAX_LOTS = 50_000  # the largest quantity of a level, in lots (50.000)


@functools.cache
def price_text(ticks: int) -> str:
    """A price of ``ticks`` hundredths as the venue writes it (8 decimals)."""
    return f"{ticks // 100}.{ticks % 100:02d}000000"


@functools.cache
def lots_text(lots: int) -> str:
    """A quantity of ``lots`` thousandths as the venue writes it (8 decimals)."""
    return f"{lots // 1000}.{lots % 1000:03d}00000" if lots else _ZERO


@dataclass(frozen=True, slots=True)
class TruthStep:
    """One update: ids ``first_id..last_id``, the ``sequence``-th update of the symbol;
    ``changes`` are ``(side, ticks, before, after)`` with ``side`` 0 for bids, 1 for asks,
    quantities in lots (0: no level)."""

    first_id: int
    last_id: int
    sequence: int
    changes: tuple[tuple[int, int, int, int], ...]


def checksum_of(bids: dict[int, int], asks: dict[int, int], depth: int = CHECKSUM_DEPTH) -> int:
    """CRC32 of the top ``depth`` levels, ``bid1:ask1:bid2:ask2:...``, each level
    ``price:quantity`` as sent (see :func:`networkpype.books.sequenced.top_levels_checksum`,
    which computes the same from a client's book)."""
    top_bids = sorted(bids, reverse=True)[:depth]
    top_asks = sorted(asks)[:depth]
    parts: list[str] = []
    for i in range(max(len(top_bids), len(top_asks))):
        if i < len(top_bids):
            t = top_bids[i]
            parts.append(f"{price_text(t)}:{lots_text(bids[t])}")
        if i < len(top_asks):
            t = top_asks[i]
            parts.append(f"{price_text(t)}:{lots_text(asks[t])}")
    return zlib.crc32(":".join(parts).encode())


class DepthTruth:
    """The ground-truth book of ``symbol`` (see the module docstring). ``levels``: per side;
    ``history``: steps kept."""

    def __init__(self, symbol: str, *, levels: int = 50, history: int = 10_000) -> None:
        if levels < 1 or history < 1:
            raise ValueError(f"levels and history must be >= 1, not {levels}, {history}")
        self.symbol = symbol.upper()
        self.levels = levels
        self._rng = random.Random(zlib.crc32(b"depth:" + self.symbol.encode()))
        self.mid = 10_000 + self._rng.randrange(3_000_000)  # 100.00 .. 30100.00
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.update_id = 0
        self.sequence = 0  # updates so far
        self._ends: dict[int, int] = {}  # sequence -> last_id, for the kept steps
        self._steps: dict[int, TruthStep] = {}  # first_id -> step
        self._order: deque[int] = deque()
        self._history = history

    @property
    def oldest_id(self) -> int:
        """The update id the oldest kept step starts from (its ``first_id - 1``)."""
        return self._steps[self._order[0]].first_id - 1 if self._order else self.update_id

    def step(self) -> TruthStep:
        """Move the market one update (at least one level changes) and record it."""
        random_ = self._rng.random  # random() and int(): a few times faster than randint()
        self.mid = max(self.levels + 2, self.mid + _MOVES[int(random_() * len(_MOVES))])
        low, high = self.mid - self.levels, self.mid + self.levels
        changes: dict[tuple[int, int], tuple[int, int]] = {}  # (side, ticks) -> before, after

        def put(side: int, book: dict[int, int], ticks: int, lots: int) -> None:
            before = book.get(ticks, 0)
            if before == lots:
                return
            first = changes.get((side, ticks), (before, before))[0]
            changes[(side, ticks)] = (first, lots)
            if lots:
                book[ticks] = lots
            else:
                del book[ticks]

        for side, book, keep in (
            (0, self.bids, range(low, self.mid)),
            (1, self.asks, range(self.mid + 1, high + 1)),
        ):
            for ticks in [t for t in book if t not in keep]:
                put(side, book, ticks, 0)  # left the window, or crossed the mid
            for ticks in keep:
                if ticks not in book:
                    put(side, book, ticks, 1 + int(random_() * _MAX_LOTS))
            for _ in range(1 + int(random_() * 6)):  # a few quantities change, some to 0
                ticks = keep[int(random_() * len(keep))]
                put(side, book, ticks, int(random_() * _MAX_LOTS) if random_() < 0.9 else 0)
        if not changes:  # at least one change, so that the ids advance
            ticks = self.mid - 1
            put(0, self.bids, ticks, self.bids.get(ticks, 0) % _MAX_LOTS + 1)
        first = self.update_id + 1
        self.update_id += len(changes)
        self.sequence += 1
        step = TruthStep(
            first,
            self.update_id,
            self.sequence,
            tuple((side, t, b, a) for (side, t), (b, a) in changes.items()),
        )
        self._steps[first] = step
        self._ends[step.sequence] = step.last_id
        self._order.append(first)
        if len(self._order) > self._history:
            del self._ends[self._steps.pop(self._order.popleft()).sequence]
        return step

    def update_id_of(self, sequence: int) -> int | None:
        """The update id at which the ``sequence``-th update ended (``None``: not kept, or
        not yet; 0 for sequence 0 while the history starts there)."""
        if sequence == self.sequence:
            return self.update_id
        if sequence == 0 and 1 in self._steps:
            return 0
        return self._ends.get(sequence)

    def after(self, update_id: int) -> TruthStep | None:
        """The kept step that follows ``update_id`` (``None``: none yet, or no longer
        kept, or ``update_id`` is not where a step ends)."""
        return self._steps.get(update_id + 1)

    def event(self, step: TruthStep) -> dict[str, Any]:
        """A Binance ``depthUpdate`` event of ``step`` (without ``E``, ``stream`` and
        ``seq``), with ``"c"``, the checksum of the book after it: call right after
        :meth:`step`."""
        bids = [[price_text(t), lots_text(a)] for s, t, _, a in step.changes if s == 0]
        asks = [[price_text(t), lots_text(a)] for s, t, _, a in step.changes if s == 1]
        return {
            "e": "depthUpdate",
            "s": self.symbol,
            "U": step.first_id,
            "u": step.last_id,
            "b": bids,
            "a": asks,
            "c": checksum_of(self.bids, self.asks),
        }

    def levels_back(self, updates: int) -> tuple[int, int, dict[int, int], dict[int, int]]:
        """The book as it was ``updates`` updates ago, as far back as the history goes:
        ``(update_id, updates_undone, bids, asks)`` (copies)."""
        bids, asks = dict(self.bids), dict(self.asks)
        at, undone = self.update_id, 0
        for first in reversed(self._order):
            if undone == updates:
                break
            step = self._steps[first]
            _undo(step, bids, asks)
            at, undone = step.first_id - 1, undone + 1
        return at, undone, bids, asks

    def levels_at(self, update_id: int) -> tuple[dict[int, int], dict[int, int]]:
        """Copies of the bids and asks as they were at ``update_id`` (a kept step's end, or
        the current id); ``ValueError`` otherwise."""
        bids, asks = dict(self.bids), dict(self.asks)
        at = self.update_id
        for first in reversed(self._order):
            if at == update_id:
                break
            step = self._steps[first]
            _undo(step, bids, asks)
            at = step.first_id - 1
        if at != update_id:
            raise ValueError(f"{self.symbol}: no kept state at update id {update_id}")
        return bids, asks


def _undo(step: TruthStep, bids: dict[int, int], asks: dict[int, int]) -> None:
    for side, ticks, before, _ in step.changes:
        book = bids if side == 0 else asks
        if before:
            book[ticks] = before
        else:
            book.pop(ticks, None)


class TruthReplica:
    """A forward copy of a ``DepthTruth``, as floats (what a client parses), for checking
    a client's book at the update id it reports: :meth:`advance_to`, then compare
    :attr:`bids`/:attr:`asks` with the client's levels."""

    def __init__(self, truth: DepthTruth, update_id: int) -> None:
        """Start at ``update_id`` (see :meth:`DepthTruth.levels_at`)."""
        self.truth = truth
        bids, asks = truth.levels_at(update_id)
        self.bids = {t / 100: q / 1000 for t, q in bids.items()}
        self.asks = {t / 100: q / 1000 for t, q in asks.items()}
        self.update_id = update_id

    def advance_to(self, update_id: int) -> bool:
        """Apply the truth's steps up to ``update_id``; False if that is not possible (an id
        behind this replica, not at a step's end, or not produced yet)."""
        truth = self.truth
        while self.update_id < update_id:
            step = truth.after(self.update_id)
            if step is None:
                return False
            for side, ticks, _, after in step.changes:
                book = self.bids if side == 0 else self.asks
                if after:
                    book[ticks / 100] = after / 1000
                else:
                    book.pop(ticks / 100, None)
            self.update_id = step.last_id
        return self.update_id == update_id
