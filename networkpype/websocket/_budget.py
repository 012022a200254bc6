"""The connection-attempt budget and the rotation arithmetic of a sharded manager, as pure
code: every function takes ``now`` (monotonic seconds) and reads no clock. Part of
:mod:`networkpype.websocket.sharded`; ``docs/sharding.md`` has the arithmetic in prose.

**Counting attempts as the venue does.** A venue counts a connection attempt when its
handshake *arrives*, some time after the client decided to dial and before the client sees
the answer. A limiter that records the attempt when it grants it, and frees the place
``window`` seconds later, lets the next attempt go the instant an old record expires; when
the old attempt travelled longer than the new one, the venue sees one attempt too many in
its window. :class:`AttemptBudget` holds each attempt's place from the grant until its
outcome is known (the handshake answered, or failed), and then for ``window`` seconds more,
plus a margin: an attempt that arrived at the venue at ``a`` (between the grant ``g`` and
the outcome ``r``) is still counted here whenever the venue may count it, since
``a + window <= r + window``. The margin (``ATTEMPT_MARGIN`` of the window, and
``ATTEMPT_MARGIN_SECONDS``) is for the venue's clock and rounding, not for network jitter,
which the holding already covers. An HTTP 429 (the venue saw more than we counted: another
program on the same address, a restart of ours) stops every attempt until its
``Retry-After``.

**Rotation arithmetic.** ``n`` connections, each rotated (make-before-break) once per
``max_age - lead`` seconds, need ``n * window / (max_age - lead)`` attempts per ``window``;
:func:`rotation_load` computes it, and the manager warns when it exceeds what rotations may
use: the attempts per window minus the reserve kept for redialling dark connections
(:func:`redial_reserve`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

from networkpype.protocol.errors import ConfigurationError

__all__ = [
    "AGE_MARGIN",
    "ATTEMPT_MARGIN",
    "ATTEMPT_MARGIN_SECONDS",
    "HANDSHAKE_ALLOWANCE",
    "AttemptBudget",
    "RotationLoad",
    "redial_reserve",
    "rotation_lead",
    "rotation_load",
]

ATTEMPT_MARGIN = 0.02
"""Fraction of the venue's attempt window added to each attempt's hold (clock rates)."""
ATTEMPT_MARGIN_SECONDS = 0.1
"""Seconds added to each attempt's hold (the venue's rounding)."""
DEFAULT_RETRY_AFTER = 1.0
"""Seconds every attempt waits after a 429 that named no ``Retry-After``."""
AGE_MARGIN = 0.05
"""Fraction of ``max_age`` by which a rotation ends before the venue's age limit."""
HANDSHAKE_ALLOWANCE = 1.0
"""Seconds a rotation's plan allows for the handshake and the first acknowledgement."""


class AttemptBudget:
    """At most ``limit`` connection attempts in any ``window`` seconds, counted the way a
    venue counts arrivals (see the module docstring). Not thread-safe; one owner.

    ``start(now)`` takes a place (check :meth:`free` first) and returns its token;
    ``finish(token, now)`` says the attempt's outcome is known: its place is held for
    ``hold`` seconds from then. ``refused(now, retry_after)`` records a 429.
    """

    __slots__ = ("_expiries", "_in_flight", "_paused_until", "_tokens", "hold", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(
                f"max_connection_attempts: the number of attempts must be an int >= 1, "
                f"got {limit!r}"
            )
        if not (window > 0 and math.isfinite(window)):
            raise ConfigurationError(
                f"max_connection_attempts: the window must be > 0 s, got {window!r}"
            )
        self.limit = limit
        self.window = float(window)
        self.hold = self.window * (1 + ATTEMPT_MARGIN) + ATTEMPT_MARGIN_SECONDS
        self._in_flight: dict[int, float] = {}  # token -> when granted
        self._expiries: list[float] = []  # a heap: when finished attempts stop counting
        self._paused_until = -math.inf
        self._tokens = itertools.count()

    def used(self, now: float) -> int:
        """Attempts counted at ``now``: in flight, or finished within ``hold`` seconds."""
        expiries = self._expiries
        while expiries and expiries[0] <= now:
            heapq.heappop(expiries)
        return len(self._in_flight) + len(expiries)

    def free(self, now: float) -> int:
        """Attempts that may start at ``now`` (0 while a 429's ``Retry-After`` runs)."""
        if now < self._paused_until:
            return 0
        return max(0, self.limit - self.used(now))

    def next_change(self, now: float) -> float:
        """The earliest time after ``now`` at which :meth:`free` may grow without a
        :meth:`finish` (an expiry, or the end of a pause); ``inf`` if none."""
        self.used(now)
        candidates = [t for t in (self._paused_until, *self._expiries[:1]) if t > now]
        return min(candidates, default=math.inf)

    def free_at(self, now: float, places: int) -> float:
        """The earliest time, from ``now`` on, at which ``places`` attempts may start if no
        other starts meanwhile (an attempt in flight counted as if its outcome came at
        ``now``); ``inf`` for more places than ``limit``. The arithmetic of a recovery after
        a mass reset (``docs/sharding.md``)."""
        if places > self.limit:
            return math.inf
        at = max(now, self._paused_until)
        self.used(now)
        ends = [*self._expiries, *[now + self.hold] * len(self._in_flight)]
        held = sorted(t for t in ends if t > at)
        short = places - (self.limit - len(held))
        return at if short <= 0 else max(at, held[short - 1])

    def start(self, now: float) -> int:
        """Take a place for an attempt starting at ``now``; returns its token."""
        token = next(self._tokens)
        self._in_flight[token] = now
        return token

    def finish(self, token: int, now: float) -> None:
        """The attempt ``token`` has its outcome at ``now``: its place is held until
        ``now + hold``. Unknown tokens are ignored."""
        if self._in_flight.pop(token, None) is not None:
            heapq.heappush(self._expiries, now + self.hold)

    def refused(self, now: float, retry_after: float | None) -> None:
        """The venue answered 429: no attempt before ``retry_after`` seconds from ``now``
        (``DEFAULT_RETRY_AFTER`` when it named none)."""
        wait = DEFAULT_RETRY_AFTER if retry_after is None else max(0.0, retry_after)
        self._paused_until = max(self._paused_until, now + wait)


def redial_reserve(connections: int, limit: int, recent_redials: int = 0) -> int:
    """Places of the attempt budget a rotation leaves free for redialling dark connections:
    one per connection (after a mass reset every connection redials at once) and one per
    redial of the last window (failures come again: a storm keeps rotations back), at most
    half the budget."""
    return max(0, min(connections + recent_redials, limit // 2))


def rotation_lead(max_age: float, frames: int, frame_gap: float, overlap: float) -> float:
    """Seconds before ``max_age`` at which a connection's rotation starts so that it ends
    before the venue's cut: the handshake (``HANDSHAKE_ALLOWANCE``), the ``frames`` of the
    replay ``frame_gap`` apart, the ``overlap``, and ``AGE_MARGIN`` of ``max_age``."""
    return HANDSHAKE_ALLOWANCE + frames * frame_gap + overlap + AGE_MARGIN * max_age


@dataclass(frozen=True, slots=True)
class RotationLoad:
    """What rotations cost: ``needed`` attempts per window for every connection's rotation,
    one rotation of a connection ``every`` seconds, and the ``available`` attempts per window
    rotations may use."""

    needed: float
    every: float
    available: int

    @property
    def fits(self) -> bool:
        return self.every > 0 and self.needed <= self.available


def rotation_load(
    connections: int, max_age: float, lead: float, limit: int, window: float
) -> RotationLoad:
    """The rotation arithmetic (module docstring): ``connections`` rotated every
    ``max_age - lead`` seconds, against ``limit`` attempts per ``window`` seconds less the
    :func:`redial_reserve`."""
    every = max_age - lead
    needed = math.inf if every <= 0 else connections * window / every
    available = limit - redial_reserve(connections, limit)
    return RotationLoad(needed, every, available)
