"""``networkpype demo`` as a user runs it: faults injected, nothing lost, every gap reported."""

from __future__ import annotations

import re

from tests.cli.helpers import networkpype


def test_demo_survives_its_faults_and_says_so() -> None:
    proc = networkpype("demo", "--no-tui", "--duration", "5", "--seed", "1", "--topics", "60")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # the faults (on a slow machine one may be skipped for lack of time: all are logged)
    injected = re.findall(r"^\[ *\d+\.\d\ds\] fault: (\w+)", out, re.MULTILINE)
    assert len(injected) >= 4, out
    if "blackhole" in injected:
        assert re.search(r"no pong within pong_timeout=0\.7 s of a ping \(half-open", out)
    if "venue" in injected:  # a 429 window or a close with 1008
        assert "429" in out or "[close 1008]" in out
    assert re.search(r"reconnected after \d+ attempt\(s\)", out)
    # the summary: counts, and the two promises the exit status stands for
    summary = out[out.index("summary (seed 1, 60 topics, up to 20 per connection, 5 s)") :]
    messages = re.search(r"^  messages received: (\d+)$", summary, re.MULTILINE)
    assert messages is not None and int(messages[1]) > 1000
    assert re.search(r"^  faults injected: [45] of 5$", summary, re.MULTILINE)
    assert re.search(r"^  reconnects: [1-9]\d*$", summary, re.MULTILINE)
    assert re.search(r"^  worst recovery: \d+\.\d{3} s \(shard\d+, \w+\)", summary, re.MULTILINE)
    assert "  topics lost: 0\n" in summary
    assert "  unreported gaps: 0\n" in summary
    assert "  venue: " in summary and " 0 rate-limit violations" in summary
    books = re.search(r"^  books: 20, valid at the end: \d+; [1-9]\d* faults", summary, re.M)
    assert books is not None, summary  # the order books, with faults of their own
    assert "  books served wrong: 0\n" in summary
    assert summary.rstrip().endswith("result: OK")


def test_quiet_prints_only_the_summary() -> None:
    proc = networkpype("demo", "--quiet", "--duration", "5", "--seed", "2", "--topics", "12")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("summary (seed 2, 12 topics")
    assert lines[-1] == "result: OK"
    assert not any(line.startswith("[") for line in lines)
