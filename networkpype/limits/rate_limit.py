"""Rate-limit declarations: what a venue allows, as plain data.

A :class:`RateLimit` says "at most ``limit`` units of weight per ``time_interval`` seconds"
for the tasks that name its ``limit_id``; each such task costs ``weight`` units and also
``LinkedLimitWeightPair.weight`` units of every linked limit (a per-endpoint limit that
also drains a global pool). The throttler copies what it is given, so changing a
``RateLimit`` after handing it over has no effect until it is handed over again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from networkpype.protocol.errors import ConfigurationError

__all__ = ["LinkedLimitWeightPair", "RateLimit", "TaskLog"]


def _check_weight(owner: str, weight: int) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise ConfigurationError(f"{owner}: weight must be an int >= 0, got {weight!r}")


@dataclass(slots=True)
class LinkedLimitWeightPair:
    """A task against the owning limit also costs ``weight`` units of limit ``limit_id``.

    ``weight`` is an ``int >= 0``; anything else raises ``ConfigurationError``.
    """

    limit_id: str
    weight: int = 1

    def __post_init__(self) -> None:
        _check_weight(f"LinkedLimitWeightPair({self.limit_id!r})", self.weight)


@dataclass(slots=True)
class RateLimit:
    """At most ``limit`` units of weight per ``time_interval`` seconds for ``limit_id``.

    ``limit`` is an ``int >= 0`` (0 lets only weight-0 tasks through); ``time_interval`` is in
    seconds, finite and ``>= 0`` (0 means the limit never holds a task back); ``weight`` is
    what one task against this limit costs (``int >= 0``); ``linked_limits`` are the other
    limits one such task also draws on. Bad values raise ``ConfigurationError``. Each instance
    gets its own ``linked_limits`` list (no shared mutable default).
    """

    limit_id: str
    limit: int
    time_interval: float
    weight: int = 1
    linked_limits: list[LinkedLimitWeightPair] = field(default_factory=list)

    def __post_init__(self) -> None:
        name = f"RateLimit({self.limit_id!r})"
        if not isinstance(self.limit_id, str):
            raise ConfigurationError(f"{name}: limit_id must be a str")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 0:
            raise ConfigurationError(f"{name}: limit must be an int >= 0, got {self.limit!r}")
        interval = self.time_interval
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or interval < 0
        ):
            raise ConfigurationError(
                f"{name}: time_interval must be finite seconds >= 0, got {interval!r}"
            )
        self.time_interval = float(interval)
        _check_weight(name, self.weight)
        # Accept any sequence (a tuple, say) but keep a list of our own.
        linked: Sequence[LinkedLimitWeightPair] = self.linked_limits
        self.linked_limits = list(linked)
        for pair in self.linked_limits:
            if not isinstance(pair, LinkedLimitWeightPair):
                raise ConfigurationError(
                    f"{name}: linked_limits must hold LinkedLimitWeightPair, got {pair!r}"
                )

    @staticmethod
    def filter_rate_limits_list(
        rate_limits: Sequence[RateLimit], limit_ids: Iterable[str]
    ) -> list[RateLimit]:
        """The limits of ``rate_limits`` whose ``limit_id`` is not in ``limit_ids``, in order
        (NetworkPype's helper, e.g. to drop a venue's limits before declaring new ones)."""
        excluded = set(limit_ids)
        return [limit for limit in rate_limits if limit.limit_id not in excluded]


@dataclass(frozen=True, slots=True)
class TaskLog:
    """One use of a rate limit: ``weight`` units taken from ``rate_limit`` at ``timestamp``.

    ``timestamp`` is on the throttler's clock: ``time.monotonic()`` seconds by default, not a
    Unix time. It is when the task was allowed to start (for a task that had to wait, the
    moment capacity freed, which is when it was woken).
    """

    timestamp: float
    rate_limit: RateLimit
    weight: int = 1
