"""Partition leases in a real JetStream KV bucket: exclusive, expiring, handed over."""

from __future__ import annotations

import asyncio
import time

import pytest

from networkpype.bus._nats import connect
from networkpype.bus.leases import LeaseChange, LeaseKeeper, LeaseSettings
from networkpype.bus.partitions import Slot
from networkpype.bus.server import LocalNatsServer
from networkpype.protocol.errors import ConfigurationError
from tests.timing import MS

SETTINGS = LeaseSettings(partitions=4, replicas=1, ttl=1.0, renew_interval=0.2, settle=0.3)


class Keeper:
    def __init__(self, keeper: LeaseKeeper, task: asyncio.Task[None]) -> None:
        self.keeper, self.task = keeper, task

    def changes(self) -> list[LeaseChange]:
        out = []
        while not self.keeper.changes.empty():
            out.append(self.keeper.changes.get_nowait())
        return out


async def _keeper(server: LocalNatsServer, name: str, settings: LeaseSettings) -> Keeper:
    nc = await connect(server.url, name=name, deadline=5.0)
    keeper = LeaseKeeper(nc.jetstream(), "leases", name, settings)
    await keeper.open()
    return Keeper(keeper, asyncio.get_running_loop().create_task(keeper.run()))


async def _until(predicate: object, timeout: float) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _stop(*keepers: Keeper) -> None:
    for k in keepers:
        k.task.cancel()
    await asyncio.gather(*(k.task for k in keepers), return_exceptions=True)


async def test_two_collectors_share_evenly_and_never_hold_a_slot_twice(
    nats_server: LocalNatsServer,
) -> None:
    a = await _keeper(nats_server, "a", SETTINGS)
    b = await _keeper(nats_server, "b", SETTINGS)
    try:
        await _until(lambda: len(a.keeper.held) + len(b.keeper.held) == 4, 10)
        await asyncio.sleep(600 * MS)  # a few more ticks: nothing moves
        assert len(a.keeper.held) == len(b.keeper.held) == 2
        assert not set(a.keeper.held) & set(b.keeper.held)
        assert a.keeper.statistics().members == 2
    finally:
        await _stop(a, b)


async def test_a_dead_collectors_slots_are_taken_after_the_ttl(
    nats_server: LocalNatsServer,
) -> None:
    a = await _keeper(nats_server, "a", SETTINGS)
    b = await _keeper(nats_server, "b", SETTINGS)
    try:
        await _until(lambda: len(a.keeper.held) + len(b.keeper.held) == 4, 10)
        lost = set(a.keeper.held)
        b.changes()
        await _stop(a)  # a crash: nothing released, the keys expire
        took = await _until(lambda: len(b.keeper.held) == 4, 10)
        assert took <= SETTINGS.ttl + 2 * SETTINGS.interval + 2.0  # server expiry: ~1 s grain
        changes = b.changes()
        assert {c.slot for c in changes if c.acquired} == lost
        assert all(c.previous_owner == "a" for c in changes)
    finally:
        await _stop(b)


async def test_released_slots_are_taken_at_the_next_tick(nats_server: LocalNatsServer) -> None:
    a = await _keeper(nats_server, "a", SETTINGS)
    b = await _keeper(nats_server, "b", SETTINGS)
    try:
        await _until(lambda: len(a.keeper.held) + len(b.keeper.held) == 4, 10)
        await _stop(a)
        await a.keeper.release_all()
        assert {c.acquired for c in a.changes()} >= {False}
        took = await _until(lambda: len(b.keeper.held) == 4, 10)
        assert took < SETTINGS.ttl  # no waiting for the expiry
    finally:
        await _stop(b)


async def test_hot_standby_puts_two_collectors_on_every_partition(
    nats_server: LocalNatsServer,
) -> None:
    settings = LeaseSettings(partitions=3, replicas=2, ttl=1.0, renew_interval=0.2, settle=0.3)
    a = await _keeper(nats_server, "a", settings)
    b = await _keeper(nats_server, "b", settings)
    try:
        await _until(lambda: len(a.keeper.held) == len(b.keeper.held) == 3, 10)
        for keeper in (a, b):
            assert sorted(s.partition for s in keeper.keeper.held) == [0, 1, 2]
        assert not set(a.keeper.held) & set(b.keeper.held)
        # What a release names as the partition's other replicas (PartitionReleased.others),
        # once a renewal tick has seen the other's slots.
        for me, other in ((a, "b"), (b, "a")):
            await _until(
                lambda: all(me.keeper.others_serving(p) == (other,) for p in (0, 1, 2)),  # noqa: B023
                10,
            )
    finally:
        await _stop(a, b)


async def test_a_different_ttl_on_the_same_bucket_is_refused(
    nats_server: LocalNatsServer,
) -> None:
    a = await _keeper(nats_server, "a", SETTINGS)
    try:
        nc = await connect(nats_server.url, name="b", deadline=5.0)
        other = LeaseKeeper(nc.jetstream(), "leases", "b", LeaseSettings(ttl=5.0))
        with pytest.raises(ConfigurationError, match="TTL of 1 s, not the 5 s"):
            await other.open()
        await nc.close()
    finally:
        await _stop(a)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="at least 1 s"):
        LeaseSettings(ttl=0.5)
    with pytest.raises(ConfigurationError, match="renew_interval"):
        LeaseSettings(ttl=3.0, renew_interval=2.0)
    assert LeaseSettings(ttl=3.0).interval == 1.0
    assert Slot(1, 0).key == "p1.r0"
