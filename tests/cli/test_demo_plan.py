"""The demo's settings and fault schedule, as pure code."""

from __future__ import annotations

import pytest

from networkpype.cli.demo_plan import DemoSettings, FaultKind, demo_topics, plan_faults


@pytest.mark.parametrize("duration", [5.0, 30.0, 600.0])
def test_every_fault_once_early_in_the_run(duration: float) -> None:
    plan = plan_faults(7, duration)
    assert sorted(f.kind.name for f in plan) == sorted(k.name for k in FaultKind)
    times = [f.at for f in plan]
    assert times == sorted(times)
    assert 0.05 * duration <= times[0] and times[-1] <= 0.3 * duration


def test_the_seed_decides_the_schedule() -> None:
    assert plan_faults(1, 30.0) == plan_faults(1, 30.0)
    orders = {tuple(f.kind for f in plan_faults(seed, 30.0)) for seed in range(20)}
    assert len(orders) > 5


def test_topics_are_distinct_and_valid() -> None:
    topics = demo_topics(300)
    assert len(set(topics)) == 300
    assert topics[:2] == ["btcusdt@trade", "ethusdt@trade"]
    assert topics[4] == "xrpusdt@depth"
    for topic in topics:
        symbol, _, stream = topic.partition("@")
        assert symbol.isalnum() and stream in ("trade", "depth")


def test_settings_spread_topics_over_the_connections() -> None:
    settings = DemoSettings.for_run(demo_topics(300), 3, 30.0, 10.0)
    assert settings.max_topics_per_connection == 100
    assert DemoSettings.for_run(demo_topics(7), 3, 30.0, 10.0).max_topics_per_connection == 3
    assert settings.max_age < settings.duration  # at least one rotation by age
    assert settings.last_fault_at < settings.duration
    assert settings.min_send_interval >= 0.2  # the venue closes above 5 frames a second
