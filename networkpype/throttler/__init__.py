"""Rate limiting: declare limits (:mod:`~networkpype.limits.rate_limit`), then wrap each
rate-limited task in ``async with throttler.execute_task(limit_id)``
(:mod:`~networkpype.throttler.throttler`)."""

from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit, TaskLog
from networkpype.throttler.throttler import AsyncRequestContext, AsyncThrottler

__all__ = [
    "AsyncRequestContext",
    "AsyncThrottler",
    "LinkedLimitWeightPair",
    "RateLimit",
    "TaskLog",
]
