"""The sliding window behind the simulator's limits: pure, an injected clock, no loop."""

from __future__ import annotations

import pytest

from networkpype.demo.limits import SlidingWindow


def test_evenly_spaced_at_the_limit_never_exceeds_it() -> None:
    window = SlidingWindow(5, 1.0)
    # 5 a second, exactly 0.2 s apart (i / 5: 1.2 - 0.2 is not 1.0 in floating point)
    assert [window.record(i / 5) for i in range(30)] == [1, 2, 3, 4] + [5] * 26


def test_one_more_within_any_window_exceeds_it() -> None:
    window = SlidingWindow(5, 1.0)
    for i in range(10):
        assert window.record(i / 5) <= 5
    assert window.record(9 / 5 + 0.199_999_999) == 6  # 1 ns short of the slot: 6 in < 1 s


def test_fixed_buckets_would_miss_a_burst_across_the_edge() -> None:
    window = SlidingWindow(5, 1.0)
    counts = [window.record(0.99 + i * 0.001) for i in range(6)]  # 6 in 5 ms across t=1
    assert counts[-1] == 6


def test_try_acquire_refuses_without_counting_and_tells_when() -> None:
    window = SlidingWindow(3, 10.0)
    assert [window.try_acquire(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert window.retry_after(2.0) == pytest.approx(8.0)
    assert not window.try_acquire(3.0)
    assert window.count(3.0) == 3  # the refusal was not counted
    assert window.retry_after(3.0) == pytest.approx(7.0)
    assert not window.try_acquire(9.999_999_999)
    assert window.try_acquire(10.0)  # the attempt at 0.0 has left the window exactly now
    assert window.retry_after(10.0) == pytest.approx(1.0)


def test_record_keeps_bounded_memory() -> None:
    window = SlidingWindow(2, 100.0)
    counts = [window.record(float(i)) for i in range(1000)]
    assert counts[-1] == 3  # "over the limit" is all that matters beyond it
    assert window.count(999.0) == 3


@pytest.mark.parametrize(("limit", "seconds"), [(0, 1.0), (1, 0.0), (1, float("inf"))])
def test_rejects_bad_settings(limit: int, seconds: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SlidingWindow(limit, seconds)
