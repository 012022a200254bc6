"""Frames of one connection spaced where the venue counts them: at the wire, control frames
included. Part of :mod:`networkpype.websocket.sharded` (``min_send_interval``).

A venue such as Binance counts every frame it receives on a connection, pings and pongs
included, and closes the connection (1008) past its rate. Spacing frames when a rate limiter
*grants* them is not enough: the grant and the write are apart by a mailbox hop and a task
switch, and a pong written by the reader in between is not counted at all. So the
:class:`FramePacer` of a connection is consulted by the connection itself, as each frame is
written (:meth:`WebSocketConnection.send_frame`, ``ping`` and the pong that answers a server
ping): a frame waits until ``gap`` seconds have passed since the previous frame *was
written*; the sender's outbox waits first (:meth:`turn`), so the connection's own wait is
normally nil. A control frame (a pong, a ping) goes before data frames waiting their turn.

The margin is the library's (users give the venue's exact number): ``gap`` is the venue's
interval times ``1 + WIRE_MARGIN``, so ``n + 1`` frames span at least ``n`` gaps, and the
venue sees more than its limit only if the network or the venue's own reading bunches them
by ``n * WIRE_MARGIN * interval`` (250 ms within Binance's second).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from networkpype.protocol.errors import ConfigurationError

__all__ = ["WIRE_MARGIN", "FramePacer"]

WIRE_MARGIN = 0.25
"""Fraction added to ``min_send_interval`` between two frames at the wire (for jitter)."""

_YIELD_FRACTION = 0.25  # a data frame that sees a control frame waiting retries this late


class FramePacer:
    """One connection's spacing: frames at least ``gap = interval * (1 + WIRE_MARGIN)``
    seconds apart at the wire, control frames first. ``clock`` is monotonic seconds.

    :meth:`delay` is pure (a function of the state and ``now``); :meth:`turn` waits for it on
    the running loop; :meth:`sent` stamps a frame written (call it before and after the write:
    a write that suspends then counts from its end). Raises ``ConfigurationError`` for an
    interval that is not a positive number of seconds.
    """

    __slots__ = ("_clock", "_last", "_urgent", "gap", "interval")

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not (interval > 0 and math.isfinite(interval)):
            raise ConfigurationError(f"min_send_interval must be > 0 s, got {interval!r}")
        self.interval = interval
        self.gap = interval * (1 + WIRE_MARGIN)
        self._clock = clock
        self._last = -math.inf
        self._urgent = 0  # control frames waiting their turn

    def delay(self, now: float, *, urgent: bool = False) -> float:
        """Seconds from ``now`` until a frame may be written (0.0: now). A data frame also
        lets a waiting control frame go first."""
        wait = self._last + self.gap - now
        if not urgent and self._urgent and wait <= 0:
            wait = self.gap * _YIELD_FRACTION
        return max(0.0, wait)

    def sent(self, now: float) -> None:
        """A frame was (or is being) written at ``now``."""
        if now > self._last:
            self._last = now

    def reset(self) -> None:
        """A new socket: the venue counts its frames afresh."""
        self._last = -math.inf

    async def turn(self, *, urgent: bool = False) -> None:
        """Return when a frame may be written now (``urgent``: a control frame). The caller
        writes it without suspending in between and calls :meth:`sent`."""
        if urgent:
            self._urgent += 1
        try:
            # A sleep to a computed time, then a fresh look: a control frame may have gone.
            while (wait := self.delay(self._clock(), urgent=urgent)) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        finally:
            if urgent:
                self._urgent -= 1
