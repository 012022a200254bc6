"""Seeded chaos schedules and fault values: pure, no event loop."""

from __future__ import annotations

import random

import msgspec
import pytest

from networkpype.protocol.errors import ConfigurationError
from networkpype.testing import (
    Bandwidth,
    Blackhole,
    ChaosEvent,
    ChaosSchedule,
    Fault,
    Heal,
    Latency,
    RefuseNew,
    Reset,
    Stall,
    random_events,
)


@pytest.mark.parametrize("seed", range(20))
def test_same_seed_same_schedule(seed: int) -> None:
    assert ChaosSchedule(seed) == ChaosSchedule(seed)
    assert ChaosSchedule(seed).events == tuple(
        random_events(
            random.Random(seed),
            duration_seconds=2.0,
            mean_gap_seconds=0.25,
            max_fault_seconds=0.5,
        )
    )


def test_different_seeds_differ() -> None:
    assert len({ChaosSchedule(seed).events for seed in range(20)}) == 20


@pytest.mark.parametrize("seed", range(50))
def test_generated_schedule_is_ordered_bounded_and_ends_healed(seed: int) -> None:
    schedule = ChaosSchedule(seed, duration_seconds=1.0, mean_gap_seconds=0.05)
    times = [at for at, _ in schedule]
    assert times == sorted(times)
    assert all(0 <= at <= 1.0 for at in times)
    assert schedule.duration_seconds == (times[-1] if times else 0.0)
    state: dict[type, bool] = {}
    for _, fault in schedule:
        match fault:
            case Blackhole(on=on) | Stall(on=on) | RefuseNew(on=on):
                state[type(fault)] = on
            case Latency(seconds=seconds):
                assert 0 <= seconds <= 0.2
                state[Latency] = seconds > 0
            case Bandwidth(bytes_per_second=rate):
                assert rate is None or 1_000 <= rate <= 1_000_000
                state[Bandwidth] = rate is not None
            case Reset(conn_id=conn_id):
                assert conn_id is None
    assert not any(state.values()), schedule


def test_kinds_restrict_what_is_drawn() -> None:
    schedule = ChaosSchedule(3, duration_seconds=5.0, kinds=[Reset])
    assert len(schedule) > 0
    assert {type(fault) for _, fault in schedule} == {Reset}


def test_explicit_events_are_sorted_stably_and_keep_the_seed() -> None:
    schedule = ChaosSchedule(
        99, [(0.5, Heal()), ChaosEvent(0.1, Latency(0.2)), (0.1, Stall()), (0.0, Reset(3))]
    )
    assert schedule.seed == 99
    assert [fault for _, fault in schedule] == [Reset(3), Latency(0.2), Stall(), Heal()]
    assert repr(schedule).startswith("ChaosSchedule(seed=99, 4 events)")


def test_faults_are_frozen_tagged_values() -> None:
    faults: list[Fault] = [
        Reset(),
        Blackhole(on=False, conn_id=2),
        Stall(),
        Latency(0.1),
        Bandwidth(None),
        RefuseNew(seconds=1.5),
        Heal(),
    ]
    encoded = msgspec.json.encode(faults)
    assert b'"fault":"refuse_new"' in encoded
    assert msgspec.json.decode(encoded, type=list[Fault]) == faults
    with pytest.raises(AttributeError):
        Reset().conn_id = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_seconds": 0.0},
        {"mean_gap_seconds": -1.0},
        {"kinds": []},
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ChaosSchedule(1, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ChaosSchedule(1, [(-1.0, Heal())])
