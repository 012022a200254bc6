"""A short book storm through the driver of ``bench/book_storm.py``: 40 books over four
shards of the simulator, 8 s of resets, dropped diffs, stale snapshots and rotations, and a
reset of every connection half way. Every update of every valid book is checked against the
simulator's book. ``python3 dev.py soak`` runs the full form (200 books, 60 s) and prints the
timings; here only bounds are asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "book_storm.py"


def _load_bench() -> ModuleType:
    # bench/ is a directory of scripts, not a package: load the file under a private name.
    spec = importlib.util.spec_from_file_location("_bench_book_storm", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


storm = _load_bench()


@pytest.mark.timeout(90)
async def test_a_short_storm_serves_no_book_wrong_and_stays_within_the_limits() -> None:
    result = await storm.run_book_storm(40, 8.0, seed=5, per_connection=10)
    lines = "\n".join(storm.report(result, 5))
    assert result.served_wrong == 0, lines
    assert result.checks > 40 * 8 * 5, lines  # every update of a valid book is checked
    assert result.resets > 0 and result.drops > 0 and result.rotations > 0, lines
    assert result.stale_served > 0 and result.breaks > result.resets, lines
    assert result.mass_reset_recovery is not None, lines
    assert result.rest_violations == 0 and result.ws_violations == 0, lines
    assert result.handshakes_refused == 0, lines
    assert result.valid_at_end == 40, lines
    assert result.ok, lines
