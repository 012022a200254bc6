"""bench/fanin_memory.py runs end to end with --quick (no timing or memory assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fanin_memory.py"
NUMBER = r"[\d,.]+(?: B| KiB| MiB)?"


def test_bench_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for column in ("(b) networkpype", "(a) raw aiohttp", "b/a", "target"):
        assert column in out, out
    rows = {
        m["figure"]: m
        for m in re.finditer(
            rf"^(?P<figure>[123]) .*?\s(?P<b>{NUMBER})\s+(?P<a>{NUMBER})\s+(?P<ratio>[\d.]+)"
            r"\s+(?P<target>b/a [<>]= [\d.]+|b <= [\d.]+ KiB)\s+(?P<verdict>met|MISSED)$",
            out,
            re.MULTILINE,
        )
    }
    assert set(rows) == {"1", "2", "3"}, out  # every figure measured both variants
    assert "1 fan-in msg/s, 10 conns x 1000" in out
    assert "failed:" not in out  # no variant failed
    assert all(float(row["ratio"]) > 0 for row in rows.values())


def test_bench_rejects_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--reps", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
