"""``BookSync``: one book's validity, decided without a socket (pure; times are passed in,
monotonic seconds).

States and transitions, all here::

    SYNCING --diff--> (buffered)             while no snapshot is loaded
    SYNCING --snapshot--> loaded             buffered diffs the venue rules call stale are
                                             dropped; the next ones are applied in order
    loaded --first diff applied--> VALID     the diff that bridges the snapshot proves the
                                             stream continues it
    loaded --gap--> SYNCING                  the snapshot is older than the stream (stale):
                                             the diffs are kept for a newer one
    VALID --next diff--> VALID               applied, then verified (checksum plug-ins)
    VALID --stale diff--> VALID              dropped (a duplicate, e.g. a rotation's overlap)
    VALID --gap / bad checksum / break--> SYNCING

A book is valid only after a diff has been applied on top of a snapshot: a snapshot alone
proves nothing about the stream that should continue it. Every break empties the buffer
(but for a gap's own diff, the first of the new stream). The buffer is bounded
(``max_buffer`` diffs, the oldest dropped first): a snapshot older than what is kept is
simply refused as stale, so dropping never makes a book wrong.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from enum import Enum

from networkpype.books.book import OrderBook
from networkpype.books.rules import Diff, Relation, Snapshot, VenueRules
from networkpype.protocol.errors import ConfigurationError

__all__ = ["BookStatus", "BookSync", "Change"]


class BookStatus(Enum):
    """Whether the book may be used."""

    SYNCING = "syncing"
    """Not valid: waiting for diffs, a snapshot, or the diff that bridges it."""
    VALID = "valid"
    """Equal to the venue's book at ``update_id``."""


class Change(Enum):
    """What one call did to the book, for the caller to act on."""

    NONE = "none"
    """Nothing a consumer can see (buffered, dropped, or still not valid)."""
    UPDATED = "updated"
    """The valid book changed."""
    INVALIDATED = "invalidated"
    """The book was valid and is not any more (``reason`` says why)."""
    VALIDATED = "validated"
    """The book is valid again (``last_invalid_for`` says after how long)."""


class BookSync:
    """One symbol's book and its validity under a venue's ``rules``.

    Feed it :meth:`on_diff`, :meth:`on_snapshot` and :meth:`invalidate` (a disconnect,
    dropped messages...); read :attr:`status`, :attr:`book`, :attr:`reason` and
    :attr:`needs_snapshot` (a snapshot should be fetched now). ``now`` is monotonic seconds.
    """

    __slots__ = (
        "_bridging",
        "_buffer",
        "_loaded",
        "book",
        "breaks",
        "invalid_since",
        "last_invalid_for",
        "reason",
        "resyncs",
        "rules",
        "snapshots",
        "stale_dropped",
        "stale_snapshots",
        "status",
        "symbol",
        "validations",
    )

    def __init__(self, symbol: str, rules: VenueRules, now: float, *, max_buffer: int = 1000):
        if max_buffer < 1:
            raise ConfigurationError(f"max_buffer must be >= 1 diff, got {max_buffer}")
        self.symbol = symbol
        self.rules = rules
        self.book = OrderBook()
        self.status = BookStatus.SYNCING
        self.reason = "not synced yet"
        self.invalid_since: float = now
        self.last_invalid_for = 0.0
        self.breaks = 0  # times a valid book was invalidated
        self.resyncs = 0  # times it became valid again after a break
        self.validations = 0  # times it became valid, the first sync included
        self.snapshots = 0  # snapshots loaded since the book was last valid
        self.stale_snapshots = 0  # snapshots refused as older than the stream, in total
        self.stale_dropped = 0  # diffs dropped as already in the book
        self._buffer: deque[Diff] = deque(maxlen=max_buffer)
        self._loaded = False  # a snapshot is in the book, waiting for the bridging diff
        self._bridging = False

    # -- reading -------------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """The book equals the venue's at ``book.update_id``."""
        return self.status is BookStatus.VALID

    @property
    def needs_snapshot(self) -> bool:
        """Not valid, no snapshot loaded, and diffs are buffered: fetch a snapshot now (the
        buffer holds what must follow it)."""
        return self.status is BookStatus.SYNCING and not self._loaded and bool(self._buffer)

    @property
    def buffered(self) -> int:
        """Diffs waiting for a snapshot."""
        return len(self._buffer)

    # -- events --------------------------------------------------------------------------

    def on_diff(self, diff: Diff, now: float) -> Change:
        """One diff from the stream, in stream order."""
        if self.status is BookStatus.VALID:
            book = self.book
            relation = self.rules.relate(book.update_id, diff, bridging=False)
            if relation is Relation.APPLY:
                book.apply(diff.bids, diff.asks, diff.last_id)
                problem = self.rules.verify(book, diff.checksum)
                if problem is not None:
                    return self._break(problem, now, None)
                return Change.UPDATED
            if relation is Relation.STALE:
                self.stale_dropped += 1
                return Change.NONE
            return self._break(
                f"sequence gap: book at {book.update_id}, next diff covers "
                f"{diff.first_id}..{diff.last_id}",
                now,
                diff,
            )
        if self._loaded:
            return self._drain((diff,), now)
        self._buffer.append(diff)
        return Change.NONE

    def on_snapshot(self, snapshot: Snapshot, now: float) -> Change:
        """A snapshot fetched for this book. Ignored while the book is valid; otherwise
        loaded, and the buffered diffs that follow it applied."""
        if self.status is BookStatus.VALID:
            return Change.NONE
        book = self.book
        book.load(snapshot.bids, snapshot.asks, snapshot.update_id)
        self.snapshots += 1
        problem = self.rules.verify(book, snapshot.checksum)
        if problem is not None:
            self._loaded = False
            self.reason = f"snapshot refused: {problem}"
            return Change.NONE
        self._loaded = True
        self._bridging = True
        pending = list(self._buffer)
        self._buffer.clear()
        return self._drain(pending, now)

    def invalidate(self, reason: str, now: float) -> Change:
        """A break seen outside the data (a disconnect, dropped messages, a lost
        subscription): not valid from now, buffer emptied. ``INVALIDATED`` if it was valid."""
        return self._break(reason, now, None)

    # -- transitions ---------------------------------------------------------------------

    def _break(self, reason: str, now: float, keep: Diff | None) -> Change:
        was_valid = self.status is BookStatus.VALID
        self.status = BookStatus.SYNCING
        self.reason = reason
        self._loaded = False
        self._bridging = False
        self._buffer.clear()
        if keep is not None:
            self._buffer.append(keep)
        if not was_valid:
            return Change.NONE
        self.invalid_since = now
        self.breaks += 1
        self.snapshots = 0
        return Change.INVALIDATED

    def _drain(self, diffs: Sequence[Diff], now: float) -> Change:
        """Apply ``diffs`` on the loaded snapshot (or what follows it), in order."""
        book, rules = self.book, self.rules
        for i, diff in enumerate(diffs):
            relation = rules.relate(book.update_id, diff, bridging=self._bridging)
            if relation is Relation.STALE:
                continue
            if relation is Relation.GAP:
                self._loaded = False
                if self._bridging:
                    self.stale_snapshots += 1
                    self.reason = (
                        f"snapshot at {book.update_id} is older than the stream "
                        f"(next diff covers {diff.first_id}..{diff.last_id})"
                    )
                else:
                    self.reason = (
                        f"sequence gap while syncing: book at {book.update_id}, next diff "
                        f"covers {diff.first_id}..{diff.last_id}"
                    )
                self._bridging = False
                self._buffer.extend(diffs[i:])
                return Change.NONE
            book.apply(diff.bids, diff.asks, diff.last_id)
            self._bridging = False
            problem = rules.verify(book, diff.checksum)
            if problem is not None:
                self._loaded = False
                self.reason = problem
                self._buffer.extend(diffs[i + 1 :])
                return Change.NONE
        if self._bridging:
            return Change.NONE  # loaded, nothing applied yet: wait for the bridging diff
        self.status = BookStatus.VALID
        self._loaded = False
        self.reason = ""
        self.last_invalid_for = max(0.0, now - self.invalid_since)
        if self.validations:
            self.resyncs += 1
        self.validations += 1
        return Change.VALIDATED
