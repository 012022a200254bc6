"""The pure throttler core: no event loop, an explicit ``now`` for every call."""

from __future__ import annotations

from decimal import Decimal

import pytest

from networkpype.limits.core import ThrottlerCore, effective_capacity
from networkpype.protocol.errors import ConfigurationError, UnknownRateLimitError
from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit


def core(*limits: RateLimit, margin: float = 0.0, share: Decimal | None = None) -> ThrottlerCore:
    return ThrottlerCore(limits, safety_margin_pct=margin, limits_share_percentage=share)


def starts(c: ThrottlerCore, limit_id: str, times: list[float]) -> list[float]:
    return [c.reserve(limit_id, t).start_time for t in times]


# -- capacity, weights, margin, share -------------------------------------------------------


def test_capacity_then_wait_until_exact_expiry() -> None:
    c = core(RateLimit("a", 3, 1.0))
    assert starts(c, "a", [0.0, 0.0, 0.0, 0.0, 0.0]) == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_wakes_when_the_oldest_relevant_record_leaves_the_window() -> None:
    c = core(RateLimit("a", 2, 1.0))
    assert starts(c, "a", [0.0, 0.3, 0.5, 0.5]) == [0.0, 0.3, 1.0, 1.3]


def test_task_arriving_after_expiry_starts_at_once() -> None:
    c = core(RateLimit("a", 1, 1.0))
    assert starts(c, "a", [0.0, 1.0, 2.5]) == [0.0, 1.0, 2.5]


def test_weight_counts_units() -> None:
    c = core(RateLimit("a", 5, 1.0, weight=2))
    # 2 + 2 = 4 fits; a third needs 6 > 5: one record (2 units) must leave first.
    assert starts(c, "a", [0.0, 0.0, 0.0, 0.0]) == [0.0, 0.0, 1.0, 1.0]


def test_waits_for_as_many_records_as_the_weight_needs() -> None:
    c = core(
        RateLimit("pool", 3, 1.0),
        RateLimit("one", 10, 1.0, linked_limits=[LinkedLimitWeightPair("pool", 1)]),
        RateLimit("three", 10, 1.0, linked_limits=[LinkedLimitWeightPair("pool", 3)]),
    )
    assert starts(c, "one", [0.0, 0.2, 0.4]) == [0.0, 0.2, 0.4]
    # The pool holds 3 units expiring at 1.0, 1.2 and 1.4: all three are free at 1.4.
    assert c.reserve("three", 0.5).start_time == 1.4


def test_linked_limit_with_linked_weight() -> None:
    c = core(
        RateLimit("global", 3, 10.0),
        RateLimit("endpoint", 100, 1.0, linked_limits=[LinkedLimitWeightPair("global", 2)]),
    )
    assert c.reserve("endpoint", 0.0).start_time == 0.0
    # 2 + 2 > 3 on the global pool, although the endpoint itself has room.
    assert c.reserve("endpoint", 0.0).start_time == 10.0
    # A task on the global limit itself (weight 1) would fit now (2 + 1 <= 3), but FIFO
    # keeps it behind the task already waiting on that limit; at 10.0, 2 + 1 fits.
    assert c.reserve("global", 0.0).start_time == 10.0


def test_linked_limit_wait_is_exact() -> None:
    c = core(
        RateLimit("global", 2, 2.0),
        RateLimit("e", 100, 1.0, linked_limits=[LinkedLimitWeightPair("global", 1)]),
    )
    assert starts(c, "e", [0.0, 0.5, 0.6, 0.7]) == [0.0, 0.5, 2.0, 2.5]


def test_safety_margin_floors_capacity() -> None:
    c = core(RateLimit("a", 10, 1.0), margin=0.05)
    assert c.capacity("a") == 9  # 9.5 floored
    assert starts(c, "a", [0.0] * 10)[-2:] == [0.0, 1.0]


def test_share_percentage_halves_and_floors_at_one() -> None:
    c = core(
        RateLimit("ten", 10, 1.0),
        RateLimit("one", 1, 1.0),
        RateLimit("three", 3, 1.0),
        RateLimit("zero", 0, 1.0, weight=0),
        share=Decimal(50),
    )
    assert c.capacity("ten") == 5
    assert c.capacity("one") == 1  # 0.5 would floor to 0: a positive limit keeps 1
    assert c.capacity("three") == 1  # 1.5 -> 1
    assert c.capacity("zero") == 0
    assert starts(c, "one", [0.0, 0.0]) == [0.0, 1.0]
    assert starts(c, "zero", [0.0, 0.0]) == [0.0, 0.0]  # weight 0 always fits


@pytest.mark.parametrize(
    ("limit", "margin", "share", "expected"),
    [
        (100, 0.05, None, 95),
        (100, 0.05, Decimal(50), 47),  # 47.5
        (1, 0.05, None, 1),  # 0.95 -> floor 0 -> at least 1
        (3, 0.05, Decimal("33.3"), 1),
        (1200, 0.0, Decimal("12.5"), 150),
        (7, 0.3, Decimal(200), 9),  # 9.8
        (0, 0.0, None, 0),
    ],
)
def test_effective_capacity_rule(
    limit: int, margin: float, share: Decimal | None, expected: int
) -> None:
    assert effective_capacity(limit, margin, share) == expected


def test_weight_above_capacity_is_a_configuration_error_not_a_hang() -> None:
    c = core(RateLimit("big", 10, 1.0, weight=6), share=Decimal(50))
    with pytest.raises(ConfigurationError, match="could never run"):
        c.validate("big")
    with pytest.raises(ConfigurationError, match="'big'"):
        c.reserve("big", 0.0)
    assert c.task_logs() == []


def test_linked_weight_above_capacity_is_a_configuration_error() -> None:
    c = core(
        RateLimit("g", 2, 1.0),
        RateLimit("e", 10, 1.0, linked_limits=[LinkedLimitWeightPair("g", 3)]),
    )
    with pytest.raises(ConfigurationError, match="'g'"):
        c.reserve("e", 0.0)


def test_zero_interval_never_holds_back() -> None:
    c = core(RateLimit("a", 1, 0.0))
    assert starts(c, "a", [0.0, 0.0, 0.0]) == [0.0, 0.0, 0.0]


# -- unknown ids, configuration -------------------------------------------------------------


def test_unknown_id_names_it_and_the_known_ids() -> None:
    c = core(RateLimit("b", 1, 1.0), RateLimit("a", 1, 1.0))
    with pytest.raises(UnknownRateLimitError) as info:
        c.reserve("nope", 0.0)
    message = str(info.value)
    assert "'nope'" in message
    assert "['a', 'b']" in message
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownRateLimitError):
        c.validate("nope")
    assert c.task_logs() == []


def test_duplicate_ids_and_undeclared_links_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="duplicate"):
        core(RateLimit("a", 1, 1.0), RateLimit("a", 2, 1.0))
    with pytest.raises(ConfigurationError, match="'missing'"):
        core(RateLimit("a", 1, 1.0, linked_limits=[LinkedLimitWeightPair("missing")]))


@pytest.mark.parametrize("margin", [-0.1, 1.0, 1.5])
def test_bad_margin_is_rejected(margin: float) -> None:
    with pytest.raises(ConfigurationError, match="safety_margin_pct"):
        core(RateLimit("a", 1, 1.0), margin=margin)


@pytest.mark.parametrize("share", [Decimal(0), Decimal(-5), Decimal("NaN")])
def test_bad_share_is_rejected(share: Decimal) -> None:
    with pytest.raises(ConfigurationError, match="limits_share_percentage"):
        core(RateLimit("a", 1, 1.0), share=share)


def test_declared_limits_are_copied_in_and_out() -> None:
    declared = RateLimit("a", 1, 1.0)
    c = core(declared)
    declared.limit = 100
    assert c.capacity("a") == 1
    out = c.rate_limits
    out[0].limit = 50
    assert c.rate_limits[0].limit == 1


def test_clock_going_backwards_is_treated_as_standing_still() -> None:
    c = core(RateLimit("a", 1, 1.0))
    assert c.reserve("a", 5.0).start_time == 5.0
    assert c.reserve("a", 1.0).start_time == 6.0


# -- FIFO -----------------------------------------------------------------------------------


def test_fifo_a_light_task_does_not_overtake_a_waiting_heavy_one() -> None:
    c = core(
        RateLimit("pool", 3, 1.0),
        RateLimit("small", 10, 1.0, linked_limits=[LinkedLimitWeightPair("pool", 1)]),
        RateLimit("big", 10, 1.0, linked_limits=[LinkedLimitWeightPair("pool", 3)]),
    )
    assert c.reserve("small", 0.0).start_time == 0.0
    assert c.reserve("big", 0.0).start_time == 1.0
    # Fitting in at 0.0 would break no window (it would expire at 1.0), but it would
    # overtake the waiting heavy task: it queues behind it instead.
    assert c.reserve("small", 0.0).start_time == 2.0


def test_fifo_holds_on_a_linked_limit_that_has_room() -> None:
    c = core(
        RateLimit("strict", 1, 1.0, linked_limits=[LinkedLimitWeightPair("roomy")]),
        RateLimit("roomy", 5, 1.0),
    )
    assert starts(c, "strict", [0.0, 0.0]) == [0.0, 1.0]
    # "roomy" has room now, but a task reserved earlier on it waits until 1.0.
    assert c.reserve("roomy", 0.0).start_time == 1.0


def test_fifo_only_orders_tasks_that_share_a_limit() -> None:
    c = core(RateLimit("a", 1, 1.0), RateLimit("b", 1, 1.0))
    assert starts(c, "a", [0.0, 0.0]) == [0.0, 1.0]
    assert c.reserve("b", 0.0).start_time == 0.0


# -- release --------------------------------------------------------------------------------


def test_release_moves_the_waiting_tasks_behind_it_earlier() -> None:
    c = core(RateLimit("a", 1, 1.0))
    a, b, d = (c.reserve("a", 0.0) for _ in range(3))
    assert [a.start_time, b.start_time, d.start_time] == [0.0, 1.0, 2.0]
    replan = c.release(b, 0.5)
    assert [(r.id, r.start_time) for r in replan.moved] == [(d.id, 1.0)]
    assert replan.failed == ()
    assert c.reserve("a", 0.5).start_time == 2.0
    assert c.release(b, 0.6).moved == ()  # releasing twice is harmless


def test_release_frees_capacity_for_new_tasks() -> None:
    c = core(RateLimit("a", 1, 1.0))
    c.reserve("a", 0.0)
    waiting = c.reserve("a", 0.0)
    c.release(waiting, 0.1)
    assert [log.timestamp for log in c.task_logs()] == [0.0]
    assert c.reserve("a", 0.2).start_time == 1.0


def test_release_replans_linked_limits_in_order() -> None:
    c = core(
        RateLimit("g", 1, 1.0),
        RateLimit("x", 5, 1.0, linked_limits=[LinkedLimitWeightPair("g")]),
        RateLimit("y", 5, 1.0, linked_limits=[LinkedLimitWeightPair("g")]),
    )
    r0 = c.reserve("x", 0.0)
    r1 = c.reserve("y", 0.0)
    r2 = c.reserve("x", 0.0)
    r3 = c.reserve("y", 0.0)
    assert [r.start_time for r in (r0, r1, r2, r3)] == [0.0, 1.0, 2.0, 3.0]
    replan = c.release(r1, 0.5)
    assert [(r.id, r.start_time) for r in replan.moved] == [(r2.id, 1.0), (r3.id, 2.0)]


# -- limits replaced at run time ------------------------------------------------------------


def test_raising_a_limit_lets_waiting_tasks_go_now() -> None:
    c = core(RateLimit("a", 2, 1.0))
    c.reserve("a", 0.0)
    c.reserve("a", 0.0)
    waiting = c.reserve("a", 0.0)
    assert waiting.start_time == 1.0
    replan = c.set_limits([RateLimit("a", 4, 1.0)], None, 0.2)
    assert [(r.id, r.start_time) for r in replan.moved] == [(waiting.id, 0.2)]


def test_recorded_uses_keep_counting_against_new_limits() -> None:
    c = core(RateLimit("a", 4, 1.0))
    assert starts(c, "a", [0.0] * 4) == [0.0] * 4
    c.set_limits([RateLimit("a", 2, 1.0)], None, 0.1)
    assert c.reserve("a", 0.1).start_time == 1.0


def test_new_interval_applies_to_recorded_uses() -> None:
    c = core(RateLimit("a", 1, 1.0))
    c.reserve("a", 0.0)
    c.set_limits([RateLimit("a", 1, 5.0)], None, 0.5)
    assert c.reserve("a", 0.5).start_time == 5.0


def test_uses_of_a_vanished_limit_are_forgotten() -> None:
    c = core(RateLimit("a", 1, 10.0))
    c.reserve("a", 0.0)
    c.set_limits([RateLimit("b", 1, 10.0)], None, 0.1)
    c.set_limits([RateLimit("a", 1, 10.0), RateLimit("b", 1, 10.0)], None, 0.2)
    assert c.reserve("a", 0.3).start_time == 0.3


def test_waiting_task_fails_when_its_limit_vanishes_or_no_longer_fits() -> None:
    c = core(RateLimit("a", 1, 1.0), RateLimit("w", 2, 1.0, weight=2))
    c.reserve("a", 0.0)
    gone = c.reserve("a", 0.0)
    c.reserve("w", 0.0)
    too_big = c.reserve("w", 0.0)
    replan = c.set_limits([RateLimit("w", 1, 1.0, weight=2)], None, 0.1)
    errors = {r.id: e for r, e in replan.failed}
    assert isinstance(errors[gone.id], UnknownRateLimitError)
    assert "could never run" in str(errors[too_big.id])
    assert replan.moved == ()


def test_share_change_rescales_every_limit() -> None:
    c = core(RateLimit("a", 10, 1.0))
    c.set_limits(c.rate_limits, Decimal(30), 0.0)
    assert c.capacity("a") == 3
    assert c.limits_share_percentage == Decimal(30)


def test_bad_new_limits_change_nothing() -> None:
    c = core(RateLimit("a", 1, 1.0))
    with pytest.raises(ConfigurationError):
        c.set_limits([RateLimit("b", 1, 1.0), RateLimit("b", 1, 1.0)], None, 0.0)
    assert [rl.limit_id for rl in c.rate_limits] == ["a"]


def test_task_logs_report_recorded_and_reserved_uses() -> None:
    rl = RateLimit("a", 1, 1.0, weight=1)
    c = core(rl)
    c.reserve("a", 0.0)
    c.reserve("a", 0.0)
    logs = c.task_logs()
    assert [(log.timestamp, log.rate_limit.limit_id, log.weight) for log in logs] == [
        (0.0, "a", 1),
        (1.0, "a", 1),
    ]
