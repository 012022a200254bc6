"""What a consumer reads of a maintained book: a handle per symbol and cheap views.

``maintainer.book("BTCUSDT")`` is a :class:`LiveBook`: it always shows the book as it is
now. Its reads hand out nothing while the book is not valid: :meth:`LiveBook.top` and
:meth:`LiveBook.depth` return ``None`` then, so a bot that acts only on what they return
never acts on a book known to be wrong. Both copy only what they return (the best level,
or the best ``n`` levels), never the whole book. Read between two ``await``s: on one event
loop, nothing changes the book while your code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from networkpype.books.book import Level, OrderBook
from networkpype.books.sync import BookStatus

if TYPE_CHECKING:
    from networkpype.books.sync import BookSync

__all__ = ["BookState", "Depth", "LiveBook", "TopOfBook"]


class TopOfBook(msgspec.Struct, frozen=True, gc=False):
    """The best bid and ask (``(price, quantity)``, ``None`` for an empty side) of a valid
    book at ``update_id``."""

    bid: Level | None
    ask: Level | None
    update_id: int

    @property
    def spread(self) -> float | None:
        """Ask price minus bid price (``None`` when a side is empty)."""
        if self.bid is None or self.ask is None:
            return None
        return self.ask[0] - self.bid[0]

    @property
    def mid(self) -> float | None:
        """The mean of the best bid and ask prices (``None`` when a side is empty)."""
        if self.bid is None or self.ask is None:
            return None
        return (self.ask[0] + self.bid[0]) / 2.0


class Depth(msgspec.Struct, frozen=True):
    """The best levels of a valid book at ``update_id``, best first on each side."""

    bids: list[Level]
    asks: list[Level]
    update_id: int


class BookState(msgspec.Struct, frozen=True):
    """A frozen snapshot of one book's bookkeeping (see ``OrderBookMaintainer.statistics``).

    ``invalid_for`` is seconds since it became not valid (0 while valid); ``breaks`` counts
    invalidations, ``resyncs`` the syncs after them, ``stale_snapshots`` snapshots refused
    as older than the stream, ``buffered`` diffs waiting for a snapshot."""

    symbol: str
    topic: str
    status: str
    update_id: int
    levels: int
    reason: str
    invalid_for: float
    breaks: int
    resyncs: int
    stale_snapshots: int
    buffered: int
    shard: str | None


class LiveBook:
    """The live handle of one maintained book (see the module docstring)."""

    __slots__ = ("_clock", "_failed", "_sync", "symbol", "topic")

    def __init__(
        self,
        sync: BookSync,
        topic: str,
        failed: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        self._sync = sync
        self._failed = failed
        self._clock = clock
        self.symbol = sync.symbol
        self.topic = topic

    def __repr__(self) -> str:
        return f"LiveBook({self.symbol!r}, {self.status.value}, update_id={self.update_id})"

    @property
    def valid(self) -> bool:
        """True while the book equals the venue's at :attr:`update_id`."""
        return self._sync.status is BookStatus.VALID and not self._failed()

    @property
    def status(self) -> BookStatus:
        """``VALID`` or ``SYNCING`` (a failed maintainer leaves every book ``SYNCING``)."""
        return BookStatus.VALID if self.valid else BookStatus.SYNCING

    @property
    def update_id(self) -> int:
        """The last update id applied (the snapshot's, or the last diff's)."""
        return self._sync.book.update_id

    @property
    def reason(self) -> str:
        """Why the book is not valid ("" while it is)."""
        return "" if self.valid else self._sync.reason or "maintainer stopped"

    @property
    def invalid_for(self) -> float:
        """Seconds since the book stopped being valid (0.0 while it is)."""
        return 0.0 if self.valid else max(0.0, self._clock() - self._sync.invalid_since)

    @property
    def resyncs(self) -> int:
        """Times the book became valid again after a break."""
        return self._sync.resyncs

    @property
    def order_book(self) -> OrderBook:
        """The book itself, unguarded: check :attr:`valid` in the same step as you read it,
        and never keep references to it across an ``await``."""
        return self._sync.book

    def top(self) -> TopOfBook | None:
        """The best bid and ask, or ``None`` while the book is not valid."""
        if not self.valid:
            return None
        book = self._sync.book
        return TopOfBook(book.best_bid(), book.best_ask(), book.update_id)

    def depth(self, n: int) -> Depth | None:
        """The best ``n`` levels of each side, or ``None`` while the book is not valid."""
        if not self.valid:
            return None
        book = self._sync.book
        return Depth(book.bids(n), book.asks(n), book.update_id)
