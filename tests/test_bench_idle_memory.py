"""bench/idle_memory.py runs end to end in a tiny form (no memory assertions: the figures
are the program's to print, not the suite's to judge)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "idle_memory.py"
SIZE = r"[\d,.]+ (?:B|KiB|MiB)"


def test_bench_prints_every_variant() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--connections", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(
        rf"^\((?P<variant>[abc])\) .*?\s({SIZE})\s+([\d.]+)\s+(-?{SIZE})\s+([\d.]+)",
        proc.stdout,
        re.MULTILINE,
    )
    assert [row[0] for row in rows] == ["a", "b", "c"], proc.stdout
    assert all(float(row[2]) > 0 for row in rows), proc.stdout
    assert re.search(r"<= 1\.5: (met|MISSED)$", proc.stdout, re.MULTILINE), proc.stdout


def test_bench_rejects_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--connections", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
