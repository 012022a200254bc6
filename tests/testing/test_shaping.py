"""The pure timing core: no event loop, an explicit clock."""

from __future__ import annotations

import pytest

from networkpype.testing._shaping import PACING_QUANTUM_SECONDS, LinkShaper, piece_size


def test_latency_is_added_once_not_per_chunk() -> None:
    shaper = LinkShaper()
    releases = [
        shaper.release_time(arrival, 100, latency_seconds=0.2, bytes_per_second=None)
        for arrival in (0.0, 0.01, 0.02, 0.03)
    ]
    assert releases == pytest.approx([0.2, 0.21, 0.22, 0.23])


def test_bandwidth_paces_back_to_back_chunks() -> None:
    shaper = LinkShaper()
    releases = [
        shaper.release_time(0.0, 1_000, latency_seconds=0.0, bytes_per_second=10_000.0)
        for _ in range(3)
    ]
    assert releases == pytest.approx([0.1, 0.2, 0.3])


def test_an_idle_link_does_not_bank_credit() -> None:
    shaper = LinkShaper()
    shaper.release_time(0.0, 1_000, latency_seconds=0.0, bytes_per_second=10_000.0)
    late = shaper.release_time(5.0, 1_000, latency_seconds=0.05, bytes_per_second=10_000.0)
    assert late == pytest.approx(5.15)


def test_release_is_never_before_arrival_plus_latency() -> None:
    shaper = LinkShaper()
    for arrival in (0.0, 0.0, 1.0, 1.5):
        release = shaper.release_time(
            arrival, 10, latency_seconds=0.3, bytes_per_second=1_000_000.0
        )
        assert release >= arrival + 0.3


def test_piece_size() -> None:
    assert piece_size(65_536, None) == 65_536
    assert piece_size(65_536, 1_000_000.0) == int(1_000_000 * PACING_QUANTUM_SECONDS)
    assert piece_size(65_536, 10.0) == 1
    assert piece_size(100, 1e9) == 100
