"""``BookSettings``: every setting of an order-book maintainer, in one frozen object."""

from __future__ import annotations

import math
from dataclasses import dataclass

from networkpype.protocol.errors import ConfigurationError

__all__ = ["BookSettings"]


@dataclass(frozen=True, slots=True)
class BookSettings:
    """Settings of an ``OrderBookMaintainer`` (seconds for every duration).

    ``max_buffer``: diffs kept per book while it waits for a snapshot (the oldest go first;
    a snapshot older than what is kept is refused and fetched again).
    ``snapshot_concurrency``: snapshots fetched at the same time, over all books (the
    throttler spaces them within the venue's weights; this bounds the requests in flight).
    ``snapshot_timeout``: one snapshot request's HTTP exchange.
    ``retry_initial``/``retry_cap``: the delay before a book fetches again after a failed
    or too old snapshot, doubling per consecutive failure up to the cap; the same backoff
    spaces resubscriptions of a topic the venue refused.
    ``resubscribe_after``: a book that is not valid and has had no diff for this long while
    its connection is open is resubscribed (a subscription lost without a word, e.g. refused
    on a replay).
    ``max_events``: ``BookInvalid``/``BookResynced`` events kept for ``events()`` (the oldest
    are dropped, counted and logged, when nobody reads).
    """

    max_buffer: int = 1000
    snapshot_concurrency: int = 10
    snapshot_timeout: float = 10.0
    retry_initial: float = 0.25
    retry_cap: float = 10.0
    resubscribe_after: float = 10.0
    max_events: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_buffer", "snapshot_concurrency", "max_events"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"BookSettings.{name} must be an int >= 1, got {value!r}")
        for name in ("snapshot_timeout", "retry_initial", "retry_cap", "resubscribe_after"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 < value < math.inf):
                raise ConfigurationError(
                    f"BookSettings.{name} must be a finite number of seconds > 0, got {value!r}"
                )
        if self.retry_cap < self.retry_initial:
            raise ConfigurationError(
                f"BookSettings.retry_cap ({self.retry_cap}) is below retry_initial "
                f"({self.retry_initial})"
            )

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``)."""
        return min(self.retry_cap, self.retry_initial * 2.0 ** max(0, failures - 1))
