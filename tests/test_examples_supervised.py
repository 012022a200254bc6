"""The supervised examples (issue: "The main job") run and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED: dict[str, list[str]] = {
    "trading_bot.py": [
        r"^subscribed 50 topics over 5 connections$",
        r"^venue kills 5 connections$",
        r"^shard\d back after \d+ ms$",
        r"^topics with data: 50/50$",
        r"^resyncs after gaps: [1-9]\d*, gaps without an event: 0$",
        r"^state consistent: True$",
    ],
    "private_channel.py": [
        r"^venue: login 1 accepted \(valid signature, fresh timestamp\)$",
        r"^client: reconnected after \d+ ms; replaying$",
        r"^venue: login 2 accepted \(valid signature, fresh timestamp\)$",
        r"^caller's request untouched: \{'op': 'subscribe', 'channel': 'orders'\}$",
        r"^distinct signatures seen by the venue: 2$",
    ],
    "typed_structs.py": [
        r"^decoder=Trade: Trade\(s='BTCUSDT', p='[\d.]+', q='[\d.]+', seq=1\)$",
        r"^decoder=Trade: Trade\(s='BTCUSDT', p='[\d.]+', q='[\d.]+', seq=3\)$",
        r"^post-processor: Trade seq=1 price=[\d.]+$",
        r"^post-processor: Trade seq=3 price=[\d.]+$",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_prints_its_story_in_order(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    position = 0
    for pattern in EXPECTED[name]:
        while position < len(lines) and not re.search(pattern, lines[position]):
            position += 1
        assert position < len(lines), (
            f"{name}: no line matching {pattern!r} in order:\n{done.stdout}"
        )
        position += 1
