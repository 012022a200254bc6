"""What the demo does when, as pure code: its settings for a run and the seeded fault
schedule.

Every run injects each :class:`FaultKind` once, in an order and at times drawn from the
seed, early in the run (none after ``last_fault_at``, three quarters of it) so that every
fault has time to be recovered from before the end (the slowest, a blackholed connection,
is detected within ``ping_interval + pong_timeout``; a 429 or a 1008 costs at least the
venue's ``Retry-After`` or the policy's ``cool_off``). The same seed gives the same
schedule.
"""

from __future__ import annotations

import enum
import math
import random

import msgspec

__all__ = [
    "DemoSettings",
    "FaultKind",
    "PlannedFault",
    "demo_topics",
    "plan_faults",
]

# Real base assets first, then made-up ones; every fifth topic is an order-book stream.
# fmt: off
_BASES = (
    "btc", "eth", "bnb", "sol", "xrp", "ada", "doge", "trx", "ton", "link", "avax", "dot",
    "matic", "shib", "ltc", "bch", "uni", "atom", "xlm", "etc", "fil", "apt", "arb", "op",
    "near", "icp", "hbar", "vet", "inj", "sui",
)
# fmt: on


class FaultKind(enum.Enum):
    """The faults of a demo run; the value is how the demo names it."""

    RESET = "connection reset"
    BLACKHOLE = "blackholed connection"
    REFUSE_429 = "429 on reconnect"
    CLOSE_1008 = "close 1008"
    ROTATE = "rotation"


class PlannedFault(msgspec.Struct, frozen=True):
    """Inject ``kind`` no sooner than ``at`` seconds after the subscriptions are
    acknowledged, on the open connection ``target`` modulo their number (faults that hit
    one connection). The demo waits for every connection to be open first: each fault meets
    a healthy client, not one still recovering from the previous fault."""

    at: float
    kind: FaultKind
    target: int


class DemoSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The knobs of one run, derived from the command line by :meth:`for_run`; seconds."""

    topics: tuple[str, ...]
    connections: int
    duration: float
    rate: float  # events per second per topic
    max_topics_per_connection: int
    min_send_interval: float = 0.2  # the venue allows 5 frames a second, pings included
    ping_interval: float = 0.3  # a ping after this long without any frame ...
    pong_timeout: float = 0.7  # ... and the link is dead when nothing answers it
    cool_off: float = 0.5  # after a 1008 or a 429 without Retry-After (venues: a minute)
    refuse_seconds: float = 0.5  # how long the venue answers handshakes with 429
    max_age: float = 0.0  # rotate a connection at this age
    last_fault_at: float = 0.0  # a fault not injected by then is skipped: no time to recover
    rotation_overlap: float = 0.5

    @classmethod
    def for_run(
        cls, topics: list[str], connections: int, duration: float, rate: float
    ) -> DemoSettings:
        """Spread ``topics`` over ``connections`` (the per-connection cap does it), and set
        ``max_age`` so that connections are also rotated by age, after the faults."""
        return cls(
            topics=tuple(topics),
            connections=connections,
            duration=duration,
            rate=rate,
            max_topics_per_connection=max(1, math.ceil(len(topics) / connections)),
            max_age=0.8 * duration,
            last_fault_at=0.75 * duration,
        )


def demo_topics(count: int) -> list[str]:
    """``count`` distinct topics: ``btcusdt@trade``, ``ethusdt@trade``, ... ``x031usdt@trade``."""
    topics = []
    for i in range(count):
        base = _BASES[i] if i < len(_BASES) else f"x{i:03d}"
        stream = "depth" if i % 5 == 4 else "trade"
        topics.append(f"{base}usdt@{stream}")
    return topics


def plan_faults(seed: int, duration: float) -> tuple[PlannedFault, ...]:
    """Each fault kind once, shuffled by ``seed``, one per equal slot of the window from 5 %
    to 30 % of ``duration`` (at a seeded point of the first half of its slot). The demo
    injects each once the client is healthy again, so most come later than planned."""
    rng = random.Random(seed)
    kinds = list(FaultKind)
    rng.shuffle(kinds)
    start, slot = 0.05 * duration, 0.25 * duration / len(kinds)
    return tuple(
        PlannedFault(
            at=round(start + i * slot + rng.uniform(0, slot / 2), 3),
            kind=kind,
            target=rng.randrange(1000),
        )
        for i, kind in enumerate(kinds)
    )
