"""The ``networkpype`` command's argument errors (the demo itself: ``tests/cli/``)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def networkpype(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "networkpype", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--duration", "0"),
        ("demo", "--count", "x"),
        ("demo", "--topics", "btcusdt@nope"),
        ("demo", "--unknown"),
        ("launch",),
        (),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    proc = networkpype(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "error:" in lines[0]


def test_bench_passes_its_options_on() -> None:
    proc = networkpype(
        "bench", "--messages", "100", "--reps", "1", "--connections", "2", "--payload", "trade"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^trade\s+2\s+50\s", proc.stdout, re.MULTILINE)
