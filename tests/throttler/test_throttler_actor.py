"""The rate-limit state lives in a throttler actor; the facade survives loop changes."""

from __future__ import annotations

import asyncio

from pykka import ActorRegistry

from networkpype.actors.throttler import ThrottlerActor
from networkpype.runtime import stop_actor
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler


async def test_state_is_held_by_a_throttler_actor() -> None:
    throttler = AsyncThrottler([RateLimit("a", 2, 0.1)], safety_margin_pct=0)
    before = set(ActorRegistry.get_by_class(ThrottlerActor))
    async with throttler.execute_task("a") as first:
        pass
    started = set(ActorRegistry.get_by_class(ThrottlerActor)) - before
    assert len(started) == 1
    # The actor answers for the limits: a third task waits for the first to leave the window.
    logs = []
    for _ in range(2):
        async with throttler.execute_task("a") as log:
            logs.append(log.timestamp)
    assert logs[0] - first.timestamp < 0.1  # room for two in the window
    assert logs[1] - first.timestamp >= 0.1 - 1e-9  # the third waits for the first to expire
    for ref in started:
        await stop_actor(ref)


def test_a_throttler_outlives_its_event_loop() -> None:
    # The seed builds the throttler once; programs may run several loops over its life.
    throttler = AsyncThrottler([RateLimit("a", 1, 0.05)], safety_margin_pct=0)

    async def use() -> float:
        async with throttler.execute_task("a") as log:
            return log.timestamp

    first = asyncio.run(use())
    second = asyncio.run(use())  # the first loop is closed: a new actor takes the state over
    assert second - first >= 0.05 - 1e-9  # the record of the first run still counted
