#!/usr/bin/env python3
"""Project commands that bootstrap their own virtual environment.

    python3 dev.py demo    # the main job: the library against its own loopback server
    python3 dev.py test    # ruff, mypy --strict, pytest, pykka's own suite on our runtime
    python3 dev.py bench   # the benchmark programs under bench/
    python3 dev.py soak    # reset storm (100 resets), accept-then-close server (60 s), the
                           # book storm (200 order books, 60 s of faults) and the sharding
                           # storms (1,000 and 2,000 topics, 5 seeds each, ~25 min)
    python3 dev.py cluster # the NATS bus: 1,000 topics, 3 collector processes, faults (~3 min)

The first run creates ``.venv/`` at the repository root and installs the package with its
development extras; later runs reuse it and reinstall only when ``pyproject.toml`` changed.
Only the standard library is used here, so a machine with just Python 3.11 suffices.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".networkpype-installed"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  # dev.py may be run by an older python3
        sys.exit(f"networkpype needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    quiet = ["-q", "--disable-pip-version-check"]
    if _run(PY, "-m", "pip", "install", *quiet, "-e", f"{ROOT}[dev]") != 0:
        sys.exit("dependency installation failed (see pip's output above)")
    STAMP.write_text(digest)


def cmd_test(extra: list[str]) -> int:
    steps: list[tuple[str | Path, ...]] = [
        (PY, "-m", "ruff", "check", "networkpype", "tests", "examples", "bench", "dev.py"),
        (PY, "-m", "mypy"),
        (PY, "-m", "pytest", *extra),
        (PY, "tests/pykka_suite/run.py"),
    ]
    for step in steps:
        rc = _run(*step)
        if rc != 0:
            print(f"FAILED: {' '.join(str(s) for s in step)} (exit {rc})", flush=True)
            return rc
    return 0


def cmd_demo(extra: list[str]) -> int:
    return _run(PY, "-m", "networkpype", "demo", *extra)


def cmd_bench(extra: list[str]) -> int:
    return _run(PY, "-m", "networkpype", "bench", *extra)


def cmd_soak(extra: list[str]) -> int:
    """Both forms of bench/recovery.py with default settings (arguments go to the storm),
    then bench/book_storm.py and bench/sharding_storm.py in full (the sharding storms: 1,000
    and 2,000 topics, 50 and 10 a message, 5 seeds each, about 25 minutes)."""
    storm = _run(PY, "bench/recovery.py", "--resets", "100", *extra)
    accept_close = _run(PY, "bench/recovery.py", "--mode", "accept-close", "--seconds", "60")
    books = _run(PY, "bench/book_storm.py", "--books", "200", "--seconds", "60")
    sharding = [
        _run(PY, "bench/sharding_storm.py", "--topics", n, "--per-message", k, "--seeds", "5")
        for n in ("1000", "2000")
        for k in ("50", "10")
    ]
    return storm or accept_close or books or max(sharding)


def cmd_cluster(extra: list[str]) -> int:
    """The market-data bus in full (docs/deployment.md): 1,000 topics over 3 collector
    processes with every fault, then a hot standby losing a collector; arguments go to both."""
    demo = (PY, "-m", "networkpype", "demo", "--cluster", "--topics", "1000")
    full = _run(*demo, *extra)
    # Two collectors on every topic: the venue sends each event twice (halve the rate).
    standby = _run(
        *demo,
        *("--rate", "5", "--replicas", "2"),
        *("--scenarios", "kill-collector,restart-nats,crash-nats"),
        *extra,
    )
    return full or standby


COMMANDS = {
    "test": cmd_test,
    "demo": cmd_demo,
    "bench": cmd_bench,
    "soak": cmd_soak,
    "cluster": cmd_cluster,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [args...]")
    ensure_venv()
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
