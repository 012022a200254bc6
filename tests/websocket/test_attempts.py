"""The attempt gate on the event loop: priorities, the redial reserve, cancellation and a 429's
pause (issue 11, item 5); and the de-duplication that outlasts a rotation (item 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from networkpype.protocol.errors import ConnectAbortedError, HandshakeError
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.websocket._attempts import REDIAL, ROTATION, AttemptGate
from networkpype.websocket._budget import AttemptBudget
from networkpype.websocket._sharded_streams import dedup_rotations
from networkpype.websocket.response import WebSocketResponse
from tests.timing import MS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_redial_goes_before_a_rotation_that_waited_longer() -> None:
    clock = Clock()
    budget = AttemptBudget(1, 10.0)
    gate = AttemptGate(budget, clock=clock)
    order: list[str] = []
    release = asyncio.Event()

    async def dial(name: str, priority: int) -> None:
        async with gate.attempt(priority):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(dial("first", REDIAL))
    await asyncio.sleep(0)
    rotation = asyncio.create_task(dial("rotation", ROTATION))
    await asyncio.sleep(0)
    redial = asyncio.create_task(dial("redial", REDIAL))
    await asyncio.sleep(10 * MS)  # its chance to pass, which it must not take
    assert not redial.done()
    assert order == ["first"]  # the one place is held until the outcome
    assert (gate.waiting(), gate.waiting(ROTATION)) == (1, 1)  # the redial and the rotation
    release.set()
    await first
    async with asyncio.timeout(2):
        while not rotation.done():
            clock.now += 100.0  # the place held after each outcome expires
            gate._notify()
            await asyncio.sleep(10 * MS)
    assert order == ["first", "redial", "rotation"]


async def test_a_rotation_leaves_the_reserve_to_redials() -> None:
    budget = AttemptBudget(3, 10.0)
    gate = AttemptGate(budget, clock=Clock())
    async with gate.attempt(REDIAL):
        pass
    assert gate.room(reserve=1)  # 2 free
    async with gate.attempt(REDIAL):
        pass
    assert not gate.room(reserve=1)  # 1 free: kept for a redial
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async with gate.attempt(ROTATION, reserve=1):
                pass
    async with asyncio.timeout(1):
        async with gate.attempt(REDIAL):
            pass


async def test_redials_of_the_last_window_are_counted() -> None:
    clock = Clock()
    gate = AttemptGate(AttemptBudget(30, 10.0), clock=clock)
    for priority in (REDIAL, ROTATION, REDIAL):
        async with gate.attempt(priority):
            pass
    assert gate.recent_redials() == 2
    clock.now = 10.5
    assert gate.recent_redials() == 0
    assert AttemptGate(None).recent_redials() == 0


async def test_a_rotation_whose_reason_went_is_cancelled_while_waiting() -> None:
    budget = AttemptBudget(1, 10.0)
    gate = AttemptGate(budget, clock=Clock())
    async with gate.attempt(REDIAL):
        pass  # the only place is held for 10 s
    reason: list[str] = []
    waiting = asyncio.create_task(
        gate.attempt(ROTATION, cancelled=lambda: reason[0] if reason else None).__aenter__()
    )
    await asyncio.sleep(10 * MS)  # its chance to pass, which it must not take
    assert not waiting.done()
    reason.append("shard1 was redialled meanwhile: it is new")
    with pytest.raises(ConnectAbortedError, match="redialled meanwhile"):
        await asyncio.wait_for(waiting, 2)
    assert gate._waiting == []


async def test_a_429_pauses_every_attempt_for_its_retry_after() -> None:
    clock = Clock()
    budget = AttemptBudget(30, 60.0)
    gate = AttemptGate(budget, clock=clock)
    with pytest.raises(HandshakeError):
        async with gate.attempt(REDIAL):
            raise HandshakeError("429", status=429, retry_after=5.0)
    assert not gate.room()
    clock.now = 5.0
    assert gate.room()
    with pytest.raises(HandshakeError):  # a 503 is no verdict on the budget
        async with gate.attempt(REDIAL):
            raise HandshakeError("503", status=503, retry_after=50.0)
    assert gate.room()


async def _items(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _msg(topic: str, seq: int) -> WebSocketResponse:
    return WebSocketResponse({"stream": topic, "seq": seq})


async def test_dedup_lasts_until_the_replacement_has_caught_up() -> None:
    """The issue's case: the old connection delivered seq 130 and closed; the replacement,
    lagging, delivers 128-130 after RotationFinished. Those are removed; from 131 on (caught
    up) nothing is held for the topic any more. Another topic is never checked."""
    started = RotationStarted(connection_id="shard1", at=0.0, replacement="shard6", topics=("a",))
    finished = RotationFinished(connection_id="shard1", at=0.0, replacement="shard6")
    source = _items(
        _msg("a", 127),
        started,
        _msg("a", 128),  # old
        _msg("b", 5),  # another shard's topic
        _msg("a", 129),  # old
        _msg("a", 130),  # old, its last
        finished,
        _msg("a", 128),  # new, lagging
        _msg("a", 129),
        _msg("b", 5),  # another topic: not de-duplicated (not rotating)
        _msg("a", 130),
        _msg("a", 131),  # caught up
        _msg("a", 132),
    )
    out = [
        item
        async for item in dedup_rotations(
            source, lambda d: (d["stream"], d["seq"]), lambda d: d["stream"]
        )
    ]
    seqs = [(i.data["stream"], i.data["seq"]) for i in out if isinstance(i, WebSocketResponse)]
    assert seqs == [
        ("a", 127),
        ("a", 128),
        ("b", 5),
        ("a", 129),
        ("a", 130),
        ("b", 5),
        ("a", 131),
        ("a", 132),
    ]
    (done,) = [i for i in out if isinstance(i, RotationFinished)]
    assert done.duplicates_removed == 0  # counted as they are removed: after it, here


async def test_dedup_during_the_overlap_counts_in_rotation_finished() -> None:
    started = RotationStarted(connection_id="s1", at=0.0, replacement="s2", topics=("a",))
    finished = RotationFinished(connection_id="s1", at=0.0, replacement="s2")
    source = _items(started, _msg("a", 1), _msg("a", 1), _msg("a", 2), _msg("a", 2), finished)
    out = [
        i
        async for i in dedup_rotations(
            source, lambda d: (d["stream"], d["seq"]), lambda d: d["stream"]
        )
    ]
    assert [i.data["seq"] for i in out if isinstance(i, WebSocketResponse)] == [1, 2]
    assert out[-1].duplicates_removed == 2


async def test_dedup_removes_every_copy_while_rotations_of_a_topic_overlap() -> None:
    """A replacement rotated again before its own rotation ended: three connections deliver
    the same events; each event is delivered once."""
    first = RotationStarted(connection_id="s1", at=0.0, replacement="s2", topics=("a",))
    second = RotationStarted(connection_id="s2", at=0.0, replacement="s3", topics=("a",))
    source = _items(
        first,
        _msg("a", 1),
        _msg("a", 1),
        second,
        _msg("a", 1),
        _msg("a", 2),
        _msg("a", 2),
        RotationFinished(connection_id="s1", at=0.0, replacement="s2"),
        _msg("a", 2),
        RotationFinished(connection_id="s2", at=0.0, replacement="s3"),
        _msg("a", 3),
    )
    out = [
        i
        async for i in dedup_rotations(
            source, lambda d: (d["stream"], d["seq"]), lambda d: d["stream"]
        )
    ]
    assert [i.data["seq"] for i in out if isinstance(i, WebSocketResponse)] == [1, 2, 3]
