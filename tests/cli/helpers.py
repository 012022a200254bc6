"""Helpers of the command-line tests: run ``python -m networkpype`` as a user does."""

from __future__ import annotations

import subprocess
import sys


def networkpype(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run the command to completion; output as text."""
    return subprocess.run(
        [sys.executable, "-m", "networkpype", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
