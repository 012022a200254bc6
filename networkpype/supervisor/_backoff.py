"""BackoffPolicy: the delay before each restart, exponential with jitter.

Pure: no I/O, no clock. Part of the supervision policy; import it from
:mod:`networkpype.supervisor.policy`, whose docstring has the defaults and their arithmetic.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec
import tenacity

from networkpype.protocol.errors import ConfigurationError

__all__ = ["BackoffPolicy"]

# tenacity's wait strategies read only ``attempt_number`` from the state they are given; one
# Retrying object serves as the (unused) owner of the states built in ``BackoffPolicy.delay``.
_RETRYING: Final = tenacity.Retrying()


class BackoffPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with jitter, computed by tenacity's wait strategies.

    Restart 1 waits 0 s; restart *k* >= 2 waits uniformly in ``[(1 - jitter) * d, d]`` with
    ``d = min(cap, initial * 2 ** (k - 2))`` seconds (``jitter=0`` makes it deterministic).
    ``healthy_after`` (seconds) is how long a restarted child must stay open without a failure
    before the attempt counter resets; opening alone never resets it.
    Raises ``ConfigurationError`` for negative or non-finite values, ``cap < initial`` or a
    ``jitter`` outside ``[0, 1]``.
    """

    initial: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    healthy_after: float = 10.0

    def __post_init__(self) -> None:
        for name in ("initial", "cap", "jitter", "healthy_after"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"BackoffPolicy.{name}={value!r}: need a finite >= 0")
        if self.cap < self.initial:
            raise ConfigurationError(
                f"BackoffPolicy.cap={self.cap!r} is below initial={self.initial!r}"
            )
        if self.jitter > 1:
            raise ConfigurationError(f"BackoffPolicy.jitter={self.jitter!r}: need 0 <= jitter <= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based since the last reset).

        Random within the documented bounds (tenacity draws from the global ``random``; it
        accepts no injected generator). Raises ``ConfigurationError`` if ``attempt < 1``.
        """
        if attempt < 1:
            raise ConfigurationError(f"restart attempt {attempt!r}: attempts count from 1")
        if attempt == 1:
            return 0.0
        steady = 1.0 - self.jitter
        wait = tenacity.wait_exponential(
            multiplier=self.initial * steady, max=self.cap * steady
        ) + tenacity.wait_random_exponential(
            multiplier=self.initial * self.jitter, max=self.cap * self.jitter
        )
        retry_state = tenacity.RetryCallState(_RETRYING, fn=None, args=(), kwargs={})
        retry_state.attempt_number = attempt - 1  # tenacity's attempt 1 -> `initial`
        return min(float(wait(retry_state)), self.cap)  # guard float rounding of the sum
