"""When a chunk of one direction may leave the proxy: the pure timing core of the fault proxy.

A direction of a proxied connection is modelled as a link with a transmitter of
``bytes_per_second`` followed by a wire of ``latency_seconds``. Each chunk is stamped with its
monotonic arrival time when the proxy reads it; its release time is then::

    tx_start = max(arrival, end of the previous chunk's transmission)
    tx_end   = tx_start + nbytes / bytes_per_second      (tx_start when unlimited)
    release  = tx_end + latency_seconds

Because every term starts from the arrival stamp, not from the time the previous chunk was
written, a steady stream is delayed by ``latency_seconds`` once, not once per chunk. No
asyncio here: the proxy's writer task sleeps until :meth:`LinkShaper.release_time`.
"""

from __future__ import annotations

import math

__all__ = ["PACING_QUANTUM_SECONDS", "LinkShaper", "piece_size"]

PACING_QUANTUM_SECONDS = 0.005
"""A rate-limited chunk is cut into pieces of about this much transmission time, in seconds,
so that a 64 KiB read is not released as one burst at the end of its transmission."""


def piece_size(chunk_size: int, bytes_per_second: float | None) -> int:
    """How many bytes of a ``chunk_size``-byte chunk to release at a time (at least 1)."""
    if bytes_per_second is None:
        return max(1, chunk_size)
    return max(1, min(chunk_size, int(bytes_per_second * PACING_QUANTUM_SECONDS)))


class LinkShaper:
    """Release times for the chunks of one direction, in the order they arrived.

    Times are in seconds on whatever monotonic clock the caller stamps arrivals with. Call
    :meth:`release_time` once per piece, in arrival order; the shaper remembers when the
    transmitter becomes free.
    """

    __slots__ = ("_busy_until",)

    def __init__(self) -> None:
        self._busy_until = -math.inf

    def release_time(
        self,
        arrival: float,
        nbytes: int,
        *,
        latency_seconds: float,
        bytes_per_second: float | None,
    ) -> float:
        """The time at which ``nbytes`` that arrived at ``arrival`` may be written out.

        ``latency_seconds`` >= 0 is the one-way delay; ``bytes_per_second`` > 0 limits the
        rate, ``None`` leaves it unlimited. Never earlier than ``arrival + latency_seconds``.
        """
        tx_start = max(arrival, self._busy_until)
        tx_end = tx_start if bytes_per_second is None else tx_start + nbytes / bytes_per_second
        self._busy_until = tx_end
        return tx_end + latency_seconds
