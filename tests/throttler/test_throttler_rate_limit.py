"""RateLimit, LinkedLimitWeightPair and TaskLog: plain data with validation."""

from __future__ import annotations

import dataclasses

import pytest

from networkpype.protocol.errors import ConfigurationError
from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit, TaskLog


def test_positional_signature_and_defaults() -> None:
    rl = RateLimit("a", 10, 1)
    assert (rl.limit_id, rl.limit, rl.time_interval, rl.weight, rl.linked_limits) == (
        "a",
        10,
        1.0,
        1,
        [],
    )
    assert isinstance(rl.time_interval, float)
    assert LinkedLimitWeightPair("g").weight == 1
    log = TaskLog(1.5, rl)
    assert (log.timestamp, log.rate_limit, log.weight) == (1.5, rl, 1)


def test_linked_limits_default_is_not_shared() -> None:
    a = RateLimit("a", 1, 1.0)
    b = RateLimit("b", 1, 1.0)
    a.linked_limits.append(LinkedLimitWeightPair("b"))
    assert b.linked_limits == []


def test_linked_limits_sequence_is_copied_into_a_list() -> None:
    pairs = (LinkedLimitWeightPair("g", 2),)
    rl = RateLimit("a", 1, 1.0, linked_limits=pairs)  # type: ignore[arg-type]
    assert rl.linked_limits == [LinkedLimitWeightPair("g", 2)]
    assert isinstance(rl.linked_limits, list)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": -1},
        {"limit": 1.5},
        {"limit": True},
        {"time_interval": -0.1},
        {"time_interval": float("inf")},
        {"time_interval": float("nan")},
        {"weight": -1},
        {"linked_limits": ["g"]},
    ],
)
def test_rate_limit_rejects_bad_values(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"limit_id": "a", "limit": 1, "time_interval": 1.0}
    base.update(kwargs)
    with pytest.raises(ConfigurationError):
        RateLimit(**base)  # type: ignore[arg-type]


def test_linked_pair_rejects_negative_weight() -> None:
    with pytest.raises(ConfigurationError, match="weight"):
        LinkedLimitWeightPair("g", -1)


def test_task_log_is_frozen() -> None:
    log = TaskLog(0.0, RateLimit("a", 1, 1.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        log.weight = 2  # type: ignore[misc]
