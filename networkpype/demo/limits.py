"""Sliding-window counting for the exchange simulator's limits: pure, clock injected.

The simulator enforces two venue limits with it: incoming messages per connection
(Binance spot: 5 a second, pings and pongs included) and connection attempts per simulator
(300 per 5 minutes). Both are *sliding* windows: the limit holds for every interval of
``window`` seconds, not for fixed buckets (fixed one-second buckets would let 10 messages
through in 2 ms across a bucket edge).

Boundary rule, exact to the nanosecond: an event at time ``t`` is inside the window at time
``now`` when ``now - t < window``. So ``limit`` events spaced exactly ``window / limit``
apart never exceed the limit (the event ``window`` seconds ago has just left), while
``limit + 1`` events within any span shorter than ``window`` do. Times are monotonic
seconds (floats, e.g. ``loop.time()``), rounded to integer nanoseconds before comparing so
that ``1.2 - 0.2`` is exactly one second here, as it is not in floating point.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["SlidingWindow"]

_NS = 1_000_000_000


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds.

    ``record(now)`` always counts the event (for limits that punish: the caller closes the
    connection when the count exceeds ``limit``); ``try_acquire(now)`` counts it only when
    it fits (for limits that refuse: the caller answers HTTP 429 and ``retry_after(now)``).
    ``now`` must not decrease between calls.
    """

    __slots__ = ("_events", "_window_ns", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be a positive number of seconds, not {window}")
        self.limit = limit
        self.window = window
        self._window_ns = _ns(window)
        self._events: deque[int] = deque()

    def _expire(self, now_ns: int) -> None:
        events = self._events
        while events and now_ns - events[0] >= self._window_ns:
            events.popleft()

    def count(self, now: float) -> int:
        """Events inside the window ending at ``now``."""
        self._expire(_ns(now))
        return len(self._events)

    def record(self, now: float) -> int:
        """Count an event at ``now``; return the events now inside the window (this one
        included). More than ``limit`` means the limit was just exceeded."""
        now_ns = _ns(now)
        self._expire(now_ns)
        self._events.append(now_ns)
        if len(self._events) > self.limit + 1:
            self._events.popleft()  # bounded memory: only "over the limit" matters beyond this
        return len(self._events)

    def try_acquire(self, now: float) -> bool:
        """Count an event at ``now`` if it fits within the limit; ``False`` (uncounted) if
        not."""
        now_ns = _ns(now)
        self._expire(now_ns)
        if len(self._events) >= self.limit:
            return False
        self._events.append(now_ns)
        return True

    def retry_after(self, now: float) -> float:
        """Seconds from ``now`` until ``try_acquire`` would succeed (0.0 if it would now)."""
        now_ns = _ns(now)
        self._expire(now_ns)
        if len(self._events) < self.limit:
            return 0.0
        oldest_ns = self._events[len(self._events) - self.limit]
        return (oldest_ns + self._window_ns - now_ns) / _NS
