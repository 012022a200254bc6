"""Property: whatever the limits, weights, links, arrivals and cancellations, the start times
the core hands out never put more than a limit's effective capacity in any window of its
interval, never start a task before it arrived, and keep FIFO order on every shared limit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from networkpype.limits.core import Reservation, ThrottlerCore
from networkpype.protocol.errors import ConfigurationError
from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit


@dataclass(frozen=True)
class Scenario:
    limits: list[RateLimit]
    margin: float
    share: Decimal | None
    # (seconds since the previous event, index of the limit to reserve on or None to
    # release a live reservation, which reservation to release)
    events: list[tuple[float, int | None, int]]


# Mostly small capacities and unit weights, so that tasks contend and wait; sometimes zeros
# and heavy weights, which exercise the "could never run" path.
capacities = st.sampled_from([1, 2, 3, 4, 5, 6, 1, 2, 3, 0])
weights = st.sampled_from([1, 1, 1, 1, 2, 0, 3])
intervals = st.sampled_from([0.1, 0.5, 1.0, 2.5, 0.0]) | st.floats(0.0, 3.0)
gaps = st.sampled_from([0.0, 0.0, 0.0, 0.1, 0.5]) | st.floats(0.0, 2.0)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(1, 4))
    ids = [f"L{i}" for i in range(n)]
    limits = []
    for limit_id in ids:
        links = draw(st.lists(st.tuples(st.sampled_from(ids), weights), max_size=min(n, 3)))
        limits.append(
            RateLimit(
                limit_id,
                draw(capacities),
                draw(intervals),
                weight=draw(weights),
                linked_limits=[LinkedLimitWeightPair(i, w) for i, w in links],
            )
        )
    margin = draw(st.sampled_from([0.0, 0.05, 0.25]))
    share = draw(st.sampled_from([None, Decimal(100), Decimal(50), Decimal("66.6")]))
    target = st.sampled_from([*range(n), *range(n), *range(n), None])
    events = draw(st.lists(st.tuples(gaps, target, st.integers(0, 50)), min_size=5, max_size=40))
    return Scenario(limits, margin, share, events)


def oracle_capacity(limit: int, margin: float, share: Decimal | None) -> int:
    """The documented rule, computed independently of the core."""
    if limit == 0:
        return 0
    pct = Decimal(100) if share is None else share
    value = Decimal(limit) * (Decimal(1) - Decimal(str(margin))) * pct / Decimal(100)
    return max(1, math.floor(value))


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_no_window_of_any_limit_is_ever_over_capacity(sc: Scenario) -> None:
    core = ThrottlerCore(sc.limits, safety_margin_pct=sc.margin, limits_share_percentage=sc.share)
    capacity = {rl.limit_id: oracle_capacity(rl.limit, sc.margin, sc.share) for rl in sc.limits}
    interval = {rl.limit_id: rl.time_interval for rl in sc.limits}
    live: dict[int, Reservation] = {}
    arrival: dict[int, float] = {}
    now = 0.0
    for gap, which, pick in sc.events:
        now += gap
        if which is None:
            if not live:
                continue
            victim = live.pop(sorted(live)[pick % len(live)])
            replan = core.release(victim, now)
            assert replan.failed == ()
            for moved in replan.moved:
                assert moved.start_time >= now
                assert moved.start_time <= live[moved.id].start_time  # a release only helps
                live[moved.id] = moved
            continue
        declared = sc.limits[which]
        try:
            reservation = core.reserve(declared.limit_id, now)
        except ConfigurationError:
            # Only when some weight can never fit under the documented capacity.
            need: dict[str, int] = {declared.limit_id: declared.weight}
            for pair in declared.linked_limits:
                need[pair.limit_id] = need.get(pair.limit_id, 0) + pair.weight
            assert any(w > capacity[lid] for lid, w in need.items())
            continue
        assert reservation.start_time >= now
        live[reservation.id] = reservation
        arrival[reservation.id] = now

    for limit_id, cap in capacity.items():
        uses = sorted(
            (r.id, r.start_time, w)
            for r in live.values()
            for lid, w in r.weights
            if lid == limit_id
        )
        # FIFO: start times never decrease in reservation order.
        ordered = [start for _, start, _ in uses]
        assert ordered == sorted(ordered)
        # Every window: the load counted at each start time s_j is the weight of the uses
        # with s_i <= s_j < s_i + T (the core's own window rule, in the same float terms);
        # the busiest window of length T always ends at some start time.
        span = interval[limit_id]
        for _, s_j, _ in uses:
            load = sum(w for _, s_i, w in uses if s_i <= s_j and s_i + span > s_j)
            assert load <= cap, (limit_id, s_j, load, cap)
    for rid, reservation in live.items():
        assert reservation.start_time >= arrival[rid]
