"""The attempt budget, the wire pacing and the rotation arithmetic of a sharded manager: pure,
an injected clock, no event loop (issue 11, items 1, 2 and 5)."""

from __future__ import annotations

import math
import random

import pytest

from networkpype.demo.limits import SlidingWindow
from networkpype.limits.core import ThrottlerCore
from networkpype.protocol.errors import ConfigurationError
from networkpype.throttler.rate_limit import RateLimit
from networkpype.websocket._budget import (
    AGE_MARGIN,
    HANDSHAKE_ALLOWANCE,
    AttemptBudget,
    redial_reserve,
    rotation_lead,
    rotation_load,
)
from networkpype.wire.pacing import WIRE_MARGIN, FramePacer


def _dial_with_budget(budget: AttemptBudget, travels: list[tuple[float, float]]) -> list[float]:
    """Dial one attempt after another, each as early as the budget lets it, with the
    (grant -> arrival, arrival -> outcome) seconds of ``travels``; return the arrivals."""
    now, arrivals = 0.0, []
    in_flight: list[tuple[float, int]] = []  # (outcome time, token)
    for to_venue, back in travels:
        while budget.free(now) == 0:
            # The earliest of: an outcome known, a held place expiring.
            outcome = min((t for t, _ in in_flight), default=math.inf)
            now = max(now, min(outcome, budget.next_change(now)))
            for done in [f for f in in_flight if f[0] <= now]:
                budget.finish(done[1], done[0])
                in_flight.remove(done)
        token = budget.start(now)
        arrivals.append(now + to_venue)
        in_flight.append((now + to_venue + back, token))
    return arrivals


def _venue_refusals(arrivals: list[float], limit: int, window: float) -> int:
    venue = SlidingWindow(limit, window)
    return sum(not venue.try_acquire(t) for t in sorted(arrivals))


def test_attempts_are_counted_until_their_outcome_so_the_venue_never_sees_too_many() -> None:
    """The issue's case: saturated at 5 attempts per 2 s, an old attempt that travelled
    longer than the new one. Counted when granted (the throttler's records), the venue
    refuses some; held until the outcome, none (whatever the travel times)."""
    rng = random.Random(11)
    travels = [(rng.uniform(0.0, 0.2), rng.uniform(0.0, 0.2)) for _ in range(70)]
    budget = AttemptBudget(5, 2.0)
    assert _venue_refusals(_dial_with_budget(budget, travels), 5, 2.0) == 0

    # What a limiter that records the grant does with the same travels.
    core = ThrottlerCore([RateLimit("connect", 5, 2.0)], safety_margin_pct=0)
    arrivals = [core.reserve("connect", 0.0).start_time + to_venue for to_venue, _ in travels]
    assert _venue_refusals(arrivals, 5, 2.0) > 0


def test_a_held_place_frees_a_window_and_a_margin_after_the_outcome() -> None:
    budget = AttemptBudget(2, 10.0)
    assert budget.hold == pytest.approx(10.0 * 1.02 + 0.1)
    first = budget.start(0.0)
    budget.start(0.5)
    assert budget.free(1.0) == 0
    assert budget.next_change(1.0) == math.inf  # both in flight: only an outcome frees one
    budget.finish(first, 3.0)  # answered at 3.0: held until 3.0 + hold
    assert budget.free(13.0) == 0
    assert budget.next_change(13.0) == pytest.approx(3.0 + budget.hold)
    assert budget.free(3.0 + budget.hold) == 1
    budget.finish(first, 4.0)  # twice: ignored
    assert budget.used(100.0) == 1  # the second one is still in flight


def test_a_429_stops_every_attempt_until_its_retry_after() -> None:
    budget = AttemptBudget(30, 60.0)
    budget.refused(5.0, 7.0)
    assert budget.free(11.9) == 0
    assert budget.next_change(6.0) == pytest.approx(12.0)
    assert budget.free(12.0) == 30
    budget.refused(20.0, None)  # no Retry-After: a short pause all the same
    assert budget.free(20.5) == 0 and budget.free(21.0) == 30


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_a_bad_attempt_limit_is_refused(limit: object) -> None:
    with pytest.raises(ConfigurationError, match="attempts must be an int >= 1"):
        AttemptBudget(limit, 60.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [0.0, -1.0, math.inf, math.nan])
def test_a_bad_attempt_window_is_refused(window: float) -> None:
    with pytest.raises(ConfigurationError, match="window must be > 0 s"):
        AttemptBudget(5, window)


def test_frames_are_spaced_at_the_wire_with_the_librarys_margin() -> None:
    pacer = FramePacer(0.2)
    assert pacer.gap == pytest.approx(0.2 * (1 + WIRE_MARGIN))
    assert pacer.delay(10.0) == 0.0
    pacer.sent(10.0)
    assert pacer.delay(10.1) == pytest.approx(pacer.gap - 0.1)
    pacer.sent(10.05)  # a write that ended later counts from its end
    assert pacer.delay(10.1) == pytest.approx(pacer.gap - 0.05)
    pacer.sent(9.0)  # never backwards
    assert pacer.delay(10.05 + pacer.gap) == 0.0
    pacer.reset()  # a new socket
    assert pacer.delay(10.06) == 0.0


def test_six_frames_never_fit_in_the_venues_second_even_bunched_by_a_fifth_of_it() -> None:
    """The issue's case: SUBSCRIBEs and a PONG at 5 a second; with the margin, 6 frames span
    at least 5 gaps, 1.25 s: the venue counts 6 in its second only if the network or its own
    reading bunches them by more than 0.25 s."""
    pacer = FramePacer(0.2)
    now, written = 0.0, []
    for _ in range(30):
        now += pacer.delay(now)
        pacer.sent(now)
        written.append(now)
    spans = [b - a for a, b in zip(written, written[5:], strict=False)]
    assert min(spans) == pytest.approx(5 * 0.25)


def test_a_control_frame_goes_before_waiting_data_frames() -> None:
    pacer = FramePacer(0.2)
    pacer.sent(0.0)
    pacer._urgent = 1  # a pong waits its turn
    assert pacer.delay(0.1, urgent=True) == pytest.approx(0.15)
    assert pacer.delay(0.3, urgent=True) == 0.0
    assert pacer.delay(0.3) > 0  # a data frame lets it go first
    pacer._urgent = 0
    assert pacer.delay(0.3) == 0.0


@pytest.mark.parametrize("interval", [0.0, -0.2, math.inf, math.nan])
def test_a_bad_send_interval_is_refused(interval: float) -> None:
    with pytest.raises(ConfigurationError, match="min_send_interval must be > 0 s"):
        FramePacer(interval)


def test_rotation_arithmetic() -> None:
    """docs/sharding.md's example: 1,000 topics (5 connections of 200), 50 a message, 5 frames
    a second, connections cut at 20 s, 30 attempts per 60 s."""
    lead = rotation_lead(20.0, frames=4, frame_gap=0.25, overlap=1.0)
    assert lead == pytest.approx(HANDSHAKE_ALLOWANCE + 4 * 0.25 + 1.0 + AGE_MARGIN * 20.0)
    load = rotation_load(5, 20.0, lead, 30, 60.0)
    assert load.every == pytest.approx(20.0 - lead)
    assert load.needed == pytest.approx(5 * 60.0 / load.every)
    assert load.available == 30 - redial_reserve(5, 30) == 25
    assert load.fits
    # 2,000 topics: 10 connections need more rotations than the budget has.
    assert not rotation_load(10, 20.0, lead, 30, 60.0).fits
    # A max_age shorter than a rotation: nothing fits.
    assert not rotation_load(1, 2.0, rotation_lead(2.0, 40, 0.25, 1.0), 30, 60.0).fits


def test_the_redial_reserve_is_one_place_a_connection_and_a_recent_redial() -> None:
    assert redial_reserve(5, 30) == 5
    assert redial_reserve(5, 30, recent_redials=4) == 9  # a storm keeps rotations back
    assert redial_reserve(40, 30) == 15  # at most half the budget
    assert redial_reserve(5, 30, recent_redials=40) == 15
    assert redial_reserve(3, 1) == 0


def test_when_places_free_for_a_mass_resets_redials() -> None:
    """The recovery arithmetic: ``places`` attempts may start once enough held places
    have expired (in flight ones counted as if they ended now); at once while room is left."""
    budget = AttemptBudget(3, 10.0)
    hold = budget.hold
    first = budget.start(0.0)
    budget.finish(first, 1.0)  # held until 1 + hold
    budget.finish(budget.start(2.0), 2.0)  # held until 2 + hold
    budget.start(3.0)  # in flight
    assert budget.free_at(3.0, 0) == 3.0
    assert budget.free_at(3.0, 1) == 1.0 + hold
    assert budget.free_at(3.0, 2) == 2.0 + hold
    assert budget.free_at(3.0, 3) == 3.0 + hold
    assert budget.free_at(3.0, 4) == math.inf
    budget.refused(3.0, 20.0)  # a 429: nothing before its Retry-After
    assert budget.free_at(3.0, 1) == 23.0
