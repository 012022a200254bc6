"""TimeSynchronizer: median offsets, round-trip midpoints, one provider call under a race."""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
import warnings
from collections.abc import Coroutine
from typing import Any

import pytest

from networkpype.protocol.errors import ConfigurationError
from networkpype.time_synchronizer import TimeSynchronizer


def test_time_is_local_time_without_samples() -> None:
    sync = TimeSynchronizer()
    before = time.time()
    now = sync.time()
    after = time.time()
    assert before <= now <= after
    assert sync.time_offset_ms == 0.0
    assert not sync.is_initialized


def test_time_adds_the_median_offset() -> None:
    sync = TimeSynchronizer()
    for sample in (100.0, 5000.0, 200.0):
        sync.add_time_offset_ms_sample(sample)
    assert sync.time_offset_ms == 200.0  # the outlier does not move it
    before = time.time()
    now = sync.time()
    after = time.time()
    assert before + 0.2 <= now <= after + 0.2
    assert sync.is_initialized


def test_only_the_last_max_samples_are_kept() -> None:
    sync = TimeSynchronizer(max_samples=3)
    for sample in (1.0, 2.0, 3.0, 1000.0, 1000.0):
        sync.add_time_offset_ms_sample(sample)
    assert sync.time_offset_ms == 1000.0  # median of [3, 1000, 1000]
    sync.clear_time_offset_ms_samples()
    assert sync.time_offset_ms == 0.0
    assert not sync.is_initialized


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_max_samples(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_samples"):
        TimeSynchronizer(max_samples=bad)


async def test_offset_is_measured_against_the_round_trip_midpoint() -> None:
    sync = TimeSynchronizer()

    async def server_time_ms() -> float:
        await asyncio.sleep(0.02)
        return (time.time() + 5.0) * 1e3  # a server 5 s ahead

    started = time.monotonic()
    await sync.update_server_time_offset_with_time_provider(server_time_ms())
    round_trip_ms = (time.monotonic() - started) * 1e3
    # The server stamped its time somewhere inside the round trip; the midpoint is at most
    # half a round trip away from it.
    assert abs(sync.time_offset_ms - 5000.0) <= round_trip_ms / 2 + 1.0


async def test_provider_error_propagates_and_records_nothing() -> None:
    sync = TimeSynchronizer()

    async def failing() -> float:
        raise OSError("server down")

    with pytest.raises(OSError, match="server down"):
        await sync.update_server_time_offset_with_time_provider(failing())
    assert not sync.is_initialized


async def test_racing_callers_make_one_provider_call_and_close_the_rest() -> None:
    sync = TimeSynchronizer()
    calls = 0

    async def provider() -> float:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return time.time() * 1e3

    coros: list[Coroutine[Any, Any, float]] = [provider() for _ in range(10)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await asyncio.gather(*(sync.update_server_time_if_not_initialized(c) for c in coros))
        assert calls == 1
        assert sync.is_initialized
        states = [inspect.getcoroutinestate(c) for c in coros]
        assert states.count(inspect.CORO_CLOSED) == 10  # nine closed unawaited, one finished
        del coros
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_already_initialized_closes_the_provider_without_calling_it() -> None:
    sync = TimeSynchronizer()
    sync.add_time_offset_ms_sample(10.0)
    called = False

    async def provider() -> float:
        nonlocal called
        called = True
        return 0.0

    coro = provider()
    await sync.update_server_time_if_not_initialized(coro)
    assert not called
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
    assert sync.time_offset_ms == 10.0


async def test_cancelled_while_waiting_for_the_lock_closes_its_provider() -> None:
    sync = TimeSynchronizer()
    release = asyncio.Event()

    async def slow() -> float:
        await release.wait()
        return time.time() * 1e3

    async def never_called() -> float:
        raise AssertionError("not awaited")

    winner = asyncio.create_task(sync.update_server_time_if_not_initialized(slow()))
    await asyncio.sleep(0)
    loser_coro = never_called()
    loser = asyncio.create_task(sync.update_server_time_if_not_initialized(loser_coro))
    await asyncio.sleep(0)
    loser.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loser
    assert inspect.getcoroutinestate(loser_coro) == inspect.CORO_CLOSED
    release.set()
    await winner
    assert sync.is_initialized


async def test_next_caller_tries_when_the_first_provider_fails() -> None:
    sync = TimeSynchronizer()

    async def failing() -> float:
        await asyncio.sleep(0)
        raise OSError("boom")

    async def working() -> float:
        return (time.time() + 1.0) * 1e3

    results = await asyncio.gather(
        sync.update_server_time_if_not_initialized(failing()),
        sync.update_server_time_if_not_initialized(working()),
        return_exceptions=True,
    )
    assert isinstance(results[0], OSError)
    assert results[1] is None
    assert sync.is_initialized
    assert 900.0 < sync.time_offset_ms < 1100.0


async def test_a_running_future_is_left_alone_when_not_needed() -> None:
    sync = TimeSynchronizer()
    sync.add_time_offset_ms_sample(1.0)
    future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    await sync.update_server_time_if_not_initialized(future)
    assert not future.cancelled()
    future.set_result(0.0)
