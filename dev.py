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
import shutil
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


# The second interpreter the test command runs the suite on: NetworkPype's users mostly run
# 3.13. Taken from NETWORKPYPE_PYTHON313, else `python3.13` on PATH, else pyenv's newest 3.13.
# No registry this project reaches ships a CPython 3.13 that installs offline (uv's and
# pbs-installer's interpreters, pyenv's sources and the npm "portable-python" all download
# from hosts outside the registries), so a machine without one skips this run, loudly.
VENV_313 = ROOT / ".venv-3.13"
PY_313 = VENV_313 / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _find_python_313() -> str | None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = [os.environ.get("NETWORKPYPE_PYTHON313")]
    found += [str(p) for p in sorted(pyenv.glob("3.13.*/bin/python3.13"), reverse=True)]
    found.append(shutil.which("python3.13"))  # a pyenv shim may be there and fail: try it
    check = ["-c", "import sys; sys.exit(sys.version_info[:2] != (3, 13))"]
    return next((p for p in found if p and subprocess.call([p, *check]) == 0), None)


def cmd_test_313(extra: list[str]) -> int:
    """The suite and pykka's on Python 3.13, in ``.venv-3.13/`` (made and reused as ``.venv/``)."""
    python = _find_python_313()
    if python is None:
        bar = "!" * 78
        print(f"\n{bar}\nSKIPPED: the suite on Python 3.13: no python3.13 found (set", end=" ")
        print(f"NETWORKPYPE_PYTHON313 or `pyenv install 3.13`)\n{bar}\n", flush=True)
        return 0
    stamp = VENV_313 / ".networkpype-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not PY_313.exists() and _run(python, "-m", "venv", VENV_313) != 0:
        return 1
    if not (stamp.exists() and stamp.read_text() == digest):
        quiet = ["-q", "--disable-pip-version-check"]
        if _run(PY_313, "-m", "pip", "install", *quiet, "-e", f"{ROOT}[dev]") != 0:
            return 1
        stamp.write_text(digest)
    # Without the long forms (Autobahn, the NATS cluster, the sharding storms: marked
    # long_form, their outcome not bound to the interpreter). Measured on 2 cores: the 3.13
    # suite takes 4.5 min without them, ~7.5 min in full; after the ~8 min of 3.11 the whole
    # command stays under 15 min. Not side by side: both suites would share the two cores
    # that the timing-sensitive tests (liveness, pacing, storms) need.
    pytest: tuple[str | Path, ...] = (PY_313, "-m", "pytest", "-m", "not long_form", *extra)
    return _run(*pytest) or _run(PY_313, "tests/pykka_suite/run.py")


def cmd_test(extra: list[str]) -> int:
    steps: list[tuple[str | Path, ...]] = [
        (PY, "-m", "ruff", "check", "networkpype", "tests", "examples", "bench", "dev.py"),
        (PY, "-m", "mypy"),
        (PY, "-m", "pytest", *extra),
        (PY, ROOT / "dev.py", "test-aiohttp"),
        (PY, "tests/pykka_suite/run.py"),
    ]
    for step in steps:
        rc = _run(*step)
        if rc != 0:
            print(f"FAILED: {' '.join(str(s) for s in step)} (exit {rc})", flush=True)
            return rc
    return cmd_test_313(extra)


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


# The reader's fast path reads frames where aiohttp's parser queued them, or hooks the parser
# itself (self-checks at connect time, the public receive() otherwise: docs/performance.md),
# so the wire tests run on the lowest aiohttp that pyproject.toml allows and on the newest
# release it allows, each in a venv of its own made once and reused (the newest is looked up
# again at every run).
AIOHTTP_LOWEST = "3.14.0"  # keep equal to the lower bound in pyproject.toml
WIRE_TESTS = [
    "tests/websocket/test_fast_path.py",
    "tests/websocket/test_connection_pump.py",
    "tests/websocket/test_frame_kind_and_close.py",
    "tests/websocket/test_compression.py",
    "tests/websocket/test_iter_batches.py",
    "tests/websocket/test_consumer_delivery.py",
    "tests/websocket/test_parser_hook.py",
    "tests/websocket/test_public_reads.py",
]


def cmd_test_aiohttp(extra: list[str]) -> int:
    """The wire tests on the lowest and on the newest aiohttp allowed (``.venv-aiohttp-low/``,
    ``.venv-aiohttp-high/``); arguments go to pytest."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    allowed = next(d for d in project["project"]["dependencies"] if d.startswith("aiohttp"))
    dev = project["project"]["optional-dependencies"]["dev"]
    testing = [d for d in dev if d.startswith(("pytest", "hypothesis", "trustme"))]
    quiet = ["-q", "--disable-pip-version-check"]
    for name, aiohttp in (("low", f"aiohttp=={AIOHTTP_LOWEST}"), ("high", allowed)):
        where = ROOT / f".venv-aiohttp-{name}"
        python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        stamp = where / ".networkpype-installed"
        digest = hashlib.sha256(repr((project, WIRE_TESTS)).encode()).hexdigest()
        if not python.exists():
            venv.EnvBuilder(with_pip=True).create(where)
        if not (stamp.exists() and stamp.read_text() == digest):
            if _run(python, "-m", "pip", "install", *quiet, "-e", ROOT, *testing) != 0:
                return 1
            stamp.write_text(digest)
        if _run(python, "-m", "pip", "install", *quiet, "--upgrade", aiohttp) != 0:
            return 1
        version = [python, "-c", "import aiohttp; print('aiohttp', aiohttp.__version__)"]
        rc = _run(*version) or _run(
            python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *WIRE_TESTS, *extra
        )
        if rc != 0:
            return rc
    return 0


COMMANDS = {
    "test": cmd_test,
    "test-aiohttp": cmd_test_aiohttp,
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
