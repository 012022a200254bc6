"""bench/ws_throughput.py runs end to end with tiny numbers (no timing assertions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ws_throughput.py"


def test_bench_prints_the_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--messages", "200", "--reps", "1", "--connections", "1,4"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "(a) raw msg/s" in out
    assert "(b) networkpype msg/s" in out
    assert "b/a" in out
    rows = {
        (m["payload"], int(m["conns"])): m
        for m in re.finditer(
            r"^(?P<payload>trade|book)\s+(?P<conns>\d+)\s+(?P<per>\d+)\s+(?P<a>[\d,]+)\s+"
            r"(?P<b>[\d,]+|n/a)\s+(?P<ratio>[\d.]+|n/a)",
            out,
            re.MULTILINE,
        )
    }
    assert set(rows) == {("trade", 1), ("trade", 4), ("book", 1), ("book", 4)}, out
    assert rows[("trade", 4)]["per"] == "50"
    for row in rows.values():
        assert row["b"] != "n/a", out  # the library's manager ran
        assert float(row["ratio"]) > 0


def test_bench_rejects_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--payload", "xml"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
