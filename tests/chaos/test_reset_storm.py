"""A short reset storm with the DEFAULT restart policy (issue 9, items 4 and 5), through the
driver of ``bench/recovery.py``: nothing lost without a gap event, no subscription sent twice
on one connection, no message delivered twice, no give-up. No timing assertions: each reset
only has to recover within a generous bound, and the whole storm within a deadline, so that a
policy that backs off for seconds fails here in seconds instead of hanging. ``python3 dev.py
soak`` runs the full form (100 resets) and prints the timings.

The seed (``NETWORKPYPE_CHAOS_SEED`` to replay one) is in every assertion message.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "recovery.py"
# More resets than the default max_restarts (15): restarts after a connection that served
# data must not count towards giving up (issue 9, item 5), or the 16th reset gives up here.
RESETS = 20
RECOVERY_BOUND = 3.0  # seconds: far above the target (50 ms p99), far below a grown backoff
DEADLINE = 12.0  # seconds for the whole storm


def _load_bench() -> ModuleType:
    # bench/ is a directory of scripts, not a package: load the file under a private name.
    spec = importlib.util.spec_from_file_location("_bench_recovery", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


recovery = _load_bench()


@pytest.mark.timeout(DEADLINE + 20)
async def test_a_reset_storm_with_default_settings_loses_and_duplicates_nothing() -> None:
    seed = int(os.environ.get("NETWORKPYPE_CHAOS_SEED", random.randrange(2**32)))
    result = await recovery.run_storm(
        RESETS,
        10,
        seed,
        recovery_bound=RECOVERY_BOUND,
        deadline=DEADLINE,
        stop_on_failure=True,
    )
    ms = [round(r * 1000) for r in result.recoveries]
    where = f"seed={seed}, {result.resets} resets, recoveries (ms) {ms}"
    assert result.aborted is None, f"{where}: {result.aborted}"
    assert result.gave_up is None, f"{where}: gave up: {result.gave_up}"
    assert result.unrecovered == 0, f"{where}: a reset not recovered within {RECOVERY_BOUND} s"
    assert len(result.recoveries) == RESETS, where
    assert result.lost_without_event == 0, f"{where}: lost {result.lost_examples}"
    assert result.duplicated_subscriptions == 0, where
    assert result.duplicate_messages == 0, where
