"""The ``networkpype`` command: ``demo`` and ``bench``."""

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


def test_demo_streams_and_summarises() -> None:
    proc = networkpype("demo", "--duration", "1.5", "--rate", "20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "reply: {'result': None, 'id': 1}" in out
    assert re.search(r"btcusdt@trade #1 BTCUSDT price=\d+\.\d{8} qty=", out)
    assert re.search(r"btcusdt@depth #1 BTCUSDT book 16x16 bid=", out)
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("summary: ")
    assert "gaps=0" in summary
    assert summary.endswith("OK")
    for topic in ("btcusdt@trade", "ethusdt@trade", "btcusdt@depth"):
        count = re.search(rf"{topic}=(\d+)", summary)
        assert count is not None
        assert int(count[1]) > 5, summary


def test_demo_stops_at_count() -> None:
    proc = networkpype(
        "demo", "--count", "7", "--duration", "20", "--rate", "50", "--topics", "solusdt@trade"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "solusdt@trade #7 " in proc.stdout
    assert "solusdt@trade #8 " not in proc.stdout
    assert "summary: 7 events" in proc.stdout


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
