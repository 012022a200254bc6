"""bench/sharding_storm.py's recovery figure (issue 11, Targets): each topic is held to the
attempt budget's bound for the last disconnection of its connection before it streamed again.
Pure: the bookkeeping takes its times from the test."""

from __future__ import annotations

import pytest

from networkpype.websocket._budget import HANDSHAKE_ALLOWANCE, AttemptBudget
from networkpype.wire.pacing import WIRE_MARGIN
from tests.chaos.test_sharding_storm import storm  # the bench, loaded once


def test_the_bound_of_a_redial_is_the_wait_a_handshake_a_replay_and_the_next_event() -> None:
    venue = storm.Venue()  # 200 streams, 5 frames a second, an event a second
    replay_10 = 20 * (1 + WIRE_MARGIN) / 5  # 20 frames of 10 topics, paced
    assert storm.redial_bound(0.0, venue, 10) == pytest.approx(
        HANDSHAKE_ALLOWANCE + replay_10 + 1.0
    )
    assert storm.redial_bound(0.0, venue, 50) == pytest.approx(3.0)  # 4 frames: 1 s
    assert storm.redial_bound(10.5, venue, 50) == pytest.approx(13.5)
    assert storm.redial_bound(-1.0, venue, 50) == pytest.approx(3.0)  # no wait is no wait


def test_a_topic_reset_again_before_it_streamed_is_held_to_the_later_bound() -> None:
    recovery = storm.Recovery(100.0, ["a", "b", "c", "d"], 3.0)
    back = {"a": 101.0}
    # 0.6 s after the mass reset, the connection of a, b and c is reset again; its redial
    # waits 10.5 s for a place: a had streamed already and keeps the mass reset's bound.
    assert recovery.reset_again(["a", "b", "c"], 100.6, 13.5, back) == 2
    back |= {"b": 113.0, "c": 114.5, "d": 102.0}
    figure = recovery.figure(back, 120.0)
    assert figure.p50 == pytest.approx(7.5)
    assert figure.max == pytest.approx(14.5)
    assert figure.bound == 3.0
    assert figure.rebound == 2
    assert figure.latest_bound == pytest.approx(14.1)  # 0.6 + 13.5 from the mass reset
    assert figure.over == 1  # c: back at 14.5 s, its bound ends at 14.1 s
    assert figure.excess == pytest.approx(0.4)
    assert "0.4" in figure.text() and "2 reset again" in figure.text()


def test_a_later_reset_replaces_the_bound_even_when_it_is_tighter() -> None:
    # The mass reset waited for places (bound 20 s); a reset at 1 s finds room (3 s):
    # the topic is held to 4 s from the mass reset, not 20.
    recovery = storm.Recovery(0.0, ["a"], 20.0)
    recovery.reset_again(["a"], 1.0, 3.0)
    figure = recovery.figure({"a": 5.0}, 30.0)
    assert (figure.over, figure.excess, figure.latest_bound) == (1, pytest.approx(1.0), 4.0)


def test_a_topic_never_back_counts_until_now_and_unknown_topics_are_ignored() -> None:
    recovery = storm.Recovery(0.0, ["a", "b"], 3.0)
    assert recovery.reset_again(["x"], 1.0, 3.0) == 0
    figure = recovery.figure({"a": 1.0}, 30.0)
    assert figure.max == 30.0
    assert (figure.rebound, figure.over, figure.excess) == (0, 1, 27.0)
    assert "0 over" in storm.Recovery(0.0, ["a"], 3.0).figure({"a": 2.0}, 9.0).text()


def test_the_wait_comes_from_the_budget_for_the_redials_that_go_first() -> None:
    """A random reset during the recovery: its redial waits behind the redials already
    waiting, so the bound reads free_at for one place more than they take."""
    budget = AttemptBudget(3, 10.0)
    for at in (0.0, 1.0, 2.0):
        budget.finish(budget.start(at), at)
    # Two redials wait; a third joins: it starts when the third place frees.
    assert budget.free_at(2.5, 3) == pytest.approx(2.0 + budget.hold)
    assert budget.free_at(2.5, 1) == pytest.approx(0.0 + budget.hold)
