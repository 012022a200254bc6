"""AsyncThrottler.execute_task on a real event loop and the real monotonic clock.

Timing is checked against the rule, not against wall-clock speed: every task must enter at
or after the start time the core reserved for it, those start times must obey the limits,
and tasks must enter in FIFO order. Upper bounds are only used as generous hang guards.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from networkpype.protocol.errors import ConfigurationError, UnknownRateLimitError
from networkpype.throttler import AsyncThrottler, LinkedLimitWeightPair, RateLimit, TaskLog

HANG_GUARD = 5.0  # seconds; far above what any test here needs


async def run_tasks(
    throttler: AsyncThrottler, limit_id: str, count: int
) -> list[tuple[int, TaskLog, float]]:
    entered: list[tuple[int, TaskLog, float]] = []

    async def task(i: int) -> None:
        async with throttler.execute_task(limit_id) as log:
            entered.append((i, log, time.monotonic()))

    await asyncio.wait_for(asyncio.gather(*(task(i) for i in range(count))), HANG_GUARD)
    return entered


def assert_windows_ok(starts: list[float], capacity: int, interval: float) -> None:
    for s_j in starts:
        load = sum(1 for s_i in starts if s_i <= s_j and s_i + interval > s_j)
        assert load <= capacity, (s_j, load)


async def test_unknown_id_raises_at_once_naming_the_known_ids() -> None:
    throttler = AsyncThrottler([RateLimit("a", 1, 1.0), RateLimit("b", 1, 1.0)])
    with pytest.raises(UnknownRateLimitError, match=r"'nope'.*\['a', 'b'\]"):
        throttler.execute_task("nope")  # raised by the call itself, before any await
    with pytest.raises(KeyError):
        throttler.execute_task("nope")


async def test_weight_above_capacity_raises_at_once() -> None:
    throttler = AsyncThrottler([RateLimit("a", 2, 1.0, weight=3)], safety_margin_pct=0)
    with pytest.raises(ConfigurationError, match="could never run"):
        throttler.execute_task("a")


async def test_spacing_follows_the_rule_fifo_and_never_early() -> None:
    throttler = AsyncThrottler([RateLimit("a", 2, 0.05)], safety_margin_pct=0)
    entered = await run_tasks(throttler, "a", 6)
    assert [i for i, _, _ in entered] == list(range(6))  # FIFO
    planned = [log.timestamp for _, log, _ in entered]
    # Each task waits for the record two places ahead to leave the window (capacity 2).
    for k in range(2, 6):
        assert planned[k] - planned[k - 2] >= 0.05 - 1e-9
    assert_windows_ok(planned, 2, 0.05)
    for _, log, actual in entered:
        assert actual >= log.timestamp  # never enters before its reserved start
        assert log.rate_limit.limit_id == "a"
        assert log.weight == 1


async def test_waiting_does_not_poll_at_retry_interval() -> None:
    # With polling every retry_interval the third task would need a minute.
    throttler = AsyncThrottler([RateLimit("a", 1, 0.02)], retry_interval=60, safety_margin_pct=0)
    entered = await run_tasks(throttler, "a", 3)
    assert len(entered) == 3
    assert throttler.retry_interval == 60


async def test_linked_limits_are_honoured() -> None:
    throttler = AsyncThrottler(
        [
            RateLimit("global", 2, 0.05),
            RateLimit("x", 100, 1.0, linked_limits=[LinkedLimitWeightPair("global")]),
        ],
        safety_margin_pct=0,
    )
    entered = await run_tasks(throttler, "x", 4)
    planned = [log.timestamp for _, log, _ in entered]
    assert_windows_ok(planned, 2, 0.05)
    assert planned[2] - planned[0] >= 0.05 - 1e-9


async def test_cancelled_waiter_releases_its_reservation() -> None:
    throttler = AsyncThrottler([RateLimit("a", 1, 0.15)], safety_margin_pct=0)
    async with throttler.execute_task("a") as first:
        pass

    async def enter() -> TaskLog:
        async with throttler.execute_task("a") as log:
            return log

    second = asyncio.create_task(enter())
    third = asyncio.create_task(enter())
    await asyncio.sleep(0)  # both reserve: second at +0.15, third at +0.3
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    log = await asyncio.wait_for(third, HANG_GUARD)
    # The third task moved up into the second one's place (+0.15, or "now" if the release
    # came later than that), well before its own reservation at +0.3.
    assert 0.15 - 1e-9 <= log.timestamp - first.timestamp < 0.3 - 1e-9


async def test_error_inside_the_block_still_counts_as_a_use() -> None:
    throttler = AsyncThrottler([RateLimit("a", 1, 30.0)], safety_margin_pct=0)
    with pytest.raises(RuntimeError):
        async with throttler.execute_task("a"):
            raise RuntimeError("boom")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async with throttler.execute_task("a"):
                pass


async def test_raising_the_limits_at_run_time_wakes_waiting_tasks() -> None:
    throttler = AsyncThrottler([RateLimit("a", 1, 30.0)], safety_margin_pct=0)
    async with throttler.execute_task("a"):
        pass

    async def enter() -> TaskLog:
        async with throttler.execute_task("a") as log:
            return log

    waiting = asyncio.create_task(enter())
    await asyncio.sleep(0)
    before = time.monotonic()
    throttler.rate_limits = [RateLimit("a", 5, 30.0)]
    log = await asyncio.wait_for(waiting, HANG_GUARD)
    assert log.timestamp >= before
    assert log.timestamp < before + 30.0  # not the old reservation
    assert [rl.limit for rl in throttler.rate_limits] == [5]


async def test_removing_a_limit_fails_its_waiting_tasks() -> None:
    throttler = AsyncThrottler([RateLimit("a", 1, 30.0)], safety_margin_pct=0)
    async with throttler.execute_task("a"):
        pass

    async def enter() -> None:
        async with throttler.execute_task("a"):
            pass

    waiting = asyncio.create_task(enter())
    await asyncio.sleep(0)
    throttler.rate_limits = [RateLimit("b", 1, 30.0)]
    with pytest.raises(UnknownRateLimitError, match="'a'"):
        await asyncio.wait_for(waiting, HANG_GUARD)


async def test_recorded_uses_survive_a_replacement_of_the_limits() -> None:
    throttler = AsyncThrottler([RateLimit("a", 2, 30.0)], safety_margin_pct=0)
    async with throttler.execute_task("a"):
        pass
    throttler.rate_limits = [RateLimit("a", 1, 30.0)]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async with throttler.execute_task("a"):
                pass


async def test_share_percentage_property_and_setter() -> None:
    throttler = AsyncThrottler([RateLimit("a", 4, 30.0)], safety_margin_pct=0)
    assert throttler.limits_share_percentage == Decimal(100)
    assert isinstance(throttler.limits_share_percentage, Decimal)
    throttler.limits_share_percentage = Decimal(50)  # capacity 2
    assert throttler.limits_share_percentage == Decimal(50)
    assert [rl.limit for rl in throttler.rate_limits] == [4]  # declared values are kept
    for _ in range(2):
        async with throttler.execute_task("a"):
            pass
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async with throttler.execute_task("a"):
                pass


async def test_copy_has_the_same_settings_and_fresh_state() -> None:
    throttler = AsyncThrottler(
        [RateLimit("a", 4, 30.0)],
        retry_interval=0.5,
        safety_margin_pct=0.25,
        limits_share_percentage=Decimal(50),
    )
    async with throttler.execute_task("a"):  # capacity floor(4 * 0.75 * 0.5) = 1: now full
        pass
    clone = throttler.copy()
    assert clone.rate_limits == throttler.rate_limits
    assert clone.limits_share_percentage == Decimal(50)  # not applied twice
    assert clone.safety_margin_pct == 0.25
    assert clone.retry_interval == 0.5
    async with asyncio.timeout(HANG_GUARD), clone.execute_task("a"):
        pass  # the copy does not inherit the original's uses


def test_bad_settings_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        AsyncThrottler([RateLimit("a", 1, 1.0)], safety_margin_pct=1.0)
    with pytest.raises(ConfigurationError):
        AsyncThrottler([RateLimit("a", 1, 1.0)], limits_share_percentage=Decimal(0))
