"""A short sharding storm (issue 11) through the driver of ``bench/sharding_storm.py``: the
in-package simulator as a Binance-like venue with the issue's limits (200 streams, 5 frames a
second counting pings and pongs, 30 attempts a minute counted on arrival, connections cut at
20 s, a ping every 3 s), the manager given the venue's exact numbers, random resets and a mass
reset. Nothing may break a limit, stay dark, go unreported, arrive twice or be lost.

No timing assertions: every topic only has to stream again within a generous bound. The full
form (60 s, two mass resets, 1,000 and 2,000 topics, 50 and 10 a message, 5 seeds) is
``python3 dev.py soak``; its figures are in ``docs/sharding.md``. The seed
(``NETWORKPYPE_CHAOS_SEED`` to replay one) is in every assertion message.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sharding_storm.py"
SECONDS = 20.0  # of faults


def _load_bench() -> ModuleType:
    # bench/ is a directory of scripts, not a package: load the file under a private name.
    spec = importlib.util.spec_from_file_location("_bench_sharding_storm", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


storm = _load_bench()


@pytest.mark.timeout(240)
@pytest.mark.long_form  # a minute of storm, on one Python only (dev.py)
@pytest.mark.parametrize(("topics", "per_message"), [(1000, 50), (400, 10)])
async def test_a_sharding_storm_breaks_no_limit_and_loses_nothing(
    topics: int, per_message: int
) -> None:
    seed = int(os.environ.get("NETWORKPYPE_CHAOS_SEED", random.randrange(2**16)))
    result = await storm.run_storm(
        topics, per_message, seed, seconds=SECONDS, reset_every=5.0, mass_resets=1
    )
    where = result.line()
    assert result.aborted is None, where
    assert result.violations == 0, f"{where}: {result.violation_details}"
    assert result.attempts_refused == 0, where
    assert result.unreported_gaps == 0, f"{where}: {result.gap_examples}"
    assert result.duplicates == 0, f"{where}: {result.duplicate_examples}"
    assert result.lost == {}, f"{where}: {list(result.lost.items())[:5]}"
    assert result.alive == topics, where
    assert result.resets > 0 and len(result.recoveries) == 1, where
