"""``runtime.cancel_and_wait``: the one cancel-and-wait idiom of the library."""

from __future__ import annotations

import asyncio
import gc

import pytest

from networkpype.runtime import cancel_and_wait


async def test_waits_for_the_cleanup_of_every_task() -> None:
    cleaned: list[int] = []

    async def holder(n: int) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # a cleanup that itself awaits
            cleaned.append(n)

    tasks = [asyncio.create_task(holder(n)) for n in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(None, *tasks)
    assert sorted(cleaned) == [0, 1, 2]
    assert all(task.cancelled() for task in tasks)


async def test_the_callers_cancellation_comes_after_the_tasks_finished() -> None:
    release = asyncio.Event()
    finished = asyncio.Event()

    async def slow_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()
            finished.set()

    inner = asyncio.create_task(slow_cleanup())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    outer.cancel()  # the caller is cancelled while the task still cleans up
    await asyncio.sleep(0)
    assert not outer.done()  # it still waits for the task
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert finished.is_set()


async def test_errors_are_retrieved_and_the_calling_task_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        raise ValueError("before the cancel reached it")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    assert failed.done()
    await cancel_and_wait(failed, asyncio.current_task())  # itself: skipped, not cancelled
    del failed
    gc.collect()
    assert "never retrieved" not in caplog.text
