"""bench/receive.py runs end to end in its quick form and prints every figure beside the raw
loop of the same run (the figures themselves are not asserted: speed is the bench's job)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "receive.py"


def test_every_variant_is_measured_against_its_baseline() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(
        r"^(trade x4|trade|depth) +(\S+)(?: / (\S+))? +[\d,]+ +[\d,]+ +([\d.]+) +([\d.]+) +\d+%$",
        proc.stdout,
        re.MULTILINE,
    )
    seen = {(case, variant, base) for case, variant, base, _, _ in rows}
    for case in ("trade", "depth", "trade x4"):
        for variant in ("iter_messages", "iter_batches", "fallback"):
            assert (case, variant, "raw") in seen, (case, variant, proc.stdout)
    assert ("trade", "typed", "raw+Struct") in seen
    assert all(float(ratio) > 0 and float(paired) > 0 for *_, ratio, paired in rows)


def test_bad_arguments_are_refused_on_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--reps", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
