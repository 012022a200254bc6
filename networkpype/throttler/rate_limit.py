"""The seed's import path of the rate-limit declarations; they live in
:mod:`networkpype.limits.rate_limit` (below the throttler actor, which uses them)."""

from networkpype.limits.rate_limit import (
    LinkedLimitWeightPair,
    RateLimit,
    TaskLog,
)

__all__ = [
    "LinkedLimitWeightPair",
    "RateLimit",
    "TaskLog",
]
