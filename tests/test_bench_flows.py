"""bench/flows.py runs end to end in its quick form (one round) and reports the three flows.

No module names are asserted: the package's layout is meant to change under this bench.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "flows.py"


def test_flows_are_traced_and_reported() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "1", "--deadline", "60", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    flows = result["flows"]
    assert list(flows) == ["frame", "subscribe", "replay"]
    for name, flow in flows.items():
        modules = flow["module_list"]
        assert flow["modules"] == len(modules) >= 1, name
        assert all(m == "networkpype" or m.startswith("networkpype.") for m in modules), modules
        assert flow["switches"] == len(flow["path"]) - 1, name
        assert flow["resume_switches"] == len(flow["resume_path"]) - 1, name
        assert flow["switches"] <= flow["resume_switches"] <= flow["control_switches"], name
        assert flow["off_loop"] == 0, name  # the actors run on the caller's loop
        assert flow["stable"], name  # one round: trivially
    # A subscribe and a replay go through at least one actor; a replay opens a connection.
    assert flows["subscribe"]["actor_hops"] >= 1
    assert flows["replay"]["actor_hops"] >= 1
    assert flows["replay"]["modules"] > flows["frame"]["modules"]


def test_flows_rejects_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rounds", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
