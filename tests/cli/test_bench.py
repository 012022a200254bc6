"""``networkpype bench`` runs the programs under bench/ and passes options on."""

from __future__ import annotations

import re

from tests.cli.helpers import networkpype


def test_quick_decode() -> None:
    proc = networkpype("bench", "--quick", "--only", "decode")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== decode --messages 20000 --reps 1" in proc.stdout
    assert re.search(r"^typed/dict: \d+\.\d\dx$", proc.stdout, re.MULTILINE)


def test_options_go_to_ws_throughput() -> None:
    proc = networkpype(
        "bench", "--messages", "100", "--reps", "1", "--connections", "2", "--payload", "trade",
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^trade\s+2\s+50\s", proc.stdout, re.MULTILINE)
    assert "== decode" not in proc.stdout
