"""Run pykka's own test-suite against pykka's threading runtime and networkpype's asyncio runtime,
for the installed (pinned) pykka and for the newest pykka 4.x release on the package index.

    .venv/bin/python tests/pykka_suite/run.py [extra pytest args]

Downloads the sdist of exactly the installed pykka version once (``pip download``, cached under
``.cache/pykka-suite/`` so later runs are offline), extracts a fresh copy, appends two lines to
its ``tests/conftest.py`` that add an ``"asyncio"`` runtime (see ``pykka_glue.py``), and runs its
``tests/`` with pykka's directory as rootdir and a generated ini, so this repository's pytest
settings (and pytest-asyncio) stay out of it. Prints the outcome counts per runtime and exits
non-zero on any failure, on no tests, or if any test ran for one runtime but not the other
(exclusions listed in ``pykka_glue.EXCLUDED`` aside).
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache" / "pykka-suite"

CONFTEST_GLUE = """

# --- appended by networkpype's tests/pykka_suite/run.py: add the asyncio runtime ---
from pykka_glue import install as _networkpype_install  # noqa: E402

runtime = _networkpype_install(RUNTIMES, Runtime)
"""

INI = """\
[pytest]
timeout = 120
"""


def fetch_sdist(version: str) -> Path:
    sdist = CACHE / f"pykka-{version}.tar.gz"
    if sdist.exists():
        return sdist
    CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        f"pykka=={version}",
        "-d",
        str(CACHE),
    ]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    if not sdist.exists():
        sys.exit(f"pip download did not produce {sdist}")
    return sdist


def extract(sdist: Path, version: str) -> Path:
    work = CACHE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    source = work / f"pykka-{version}"
    if not (source / "tests" / "conftest.py").exists():
        sys.exit(f"{sdist} has no tests/conftest.py; cannot run pykka's suite")
    return source


def summarize(report: dict[str, object]) -> tuple[str, list[str]]:
    tests = report["tests"]
    assert isinstance(tests, dict)
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    by_runtime: dict[str, set[str]] = collections.defaultdict(set)
    for nodeid, info in tests.items():
        runtime = info["runtime"] or "(not runtime-parametrised)"
        counts[runtime][info["status"]] += 1
        if info["runtime"] and info["status"] == "passed":
            by_runtime[info["runtime"]].add(nodeid.replace(f"[{info['runtime']}", "[<runtime>"))
    lines = ["pykka test-suite outcomes per runtime:"]
    for runtime in sorted(counts):
        parts = ", ".join(f"{n} {status}" for status, n in sorted(counts[runtime].items()))
        lines.append(f"  {runtime:28} {parts}")
    excluded = report["excluded"]
    assert isinstance(excluded, dict)
    for nodeid, why in excluded.items():
        lines.append(f"  excluded {nodeid}: {why}")
    problems = []
    for runtime in ("threading", "asyncio"):
        if counts[runtime]["passed"] == 0:
            problems.append(f"no test passed on the {runtime} runtime")
    excluded_generic = {n.replace("[asyncio", "[<runtime>") for n in excluded}
    missing = by_runtime["threading"] - by_runtime["asyncio"] - excluded_generic
    if missing:
        problems.append(f"passed on threading but not on asyncio: {sorted(missing)}")
    return "\n".join(lines), problems


def newest_release() -> str | None:
    """The newest pykka 4.x on the package index (``pip download`` fetches it into the cache),
    or None when the index cannot be reached."""
    probe = CACHE / "newest"
    shutil.rmtree(probe, ignore_errors=True)
    probe.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "pykka>=4,<5",
        "-d",
        str(probe),
    ]
    print("+", " ".join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        return None
    found = sorted(probe.glob("pykka-*.tar.gz"))
    if not found:
        return None
    version = found[-1].name[len("pykka-") : -len(".tar.gz")]
    shutil.copy2(found[-1], CACHE / found[-1].name)  # fetch_sdist() finds it there
    return version


def install_release(version: str) -> Path:
    """pykka ``version`` installed into a directory of its own (put first on the path)."""
    target = CACHE / f"site-{version}"
    if not (target / "pykka").exists():
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "--target",
            str(target),
            f"pykka=={version}",
        ]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return target


def run_suite(version: str, site: Path | None) -> int:
    """pykka ``version``'s own suite on both runtimes; ``site`` holds that pykka when it is
    not the installed one."""
    source = extract(fetch_sdist(version), version)
    with (source / "tests" / "conftest.py").open("a", encoding="utf-8") as f:
        f.write(CONFTEST_GLUE)
    ini = source / "networkpype-pytest.ini"
    ini.write_text(INI, encoding="utf-8")
    report_path = source / "networkpype-report.json"
    env = dict(os.environ)
    paths = [str(site)] if site is not None else []
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, str(HERE), env.get("PYTHONPATH")]))
    env["NETWORKPYPE_PYKKA_SUITE_REPORT"] = str(report_path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ini),
        "--rootdir",
        str(source),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:asyncio",
        "-p",
        "pykka_glue",
        "-q",
        "tests",
        *sys.argv[1:],
    ]
    print(f"+ (cd {source}) {' '.join(cmd)}", flush=True)
    rc = subprocess.call(cmd, cwd=source, env=env)
    if not report_path.exists():
        print(f"FAILED: pykka {version}: pytest exited {rc} without a report", flush=True)
        return rc or 1
    summary, problems = summarize(json.loads(report_path.read_text(encoding="utf-8")))
    print(f"pykka {version}: {summary}")
    for problem in problems:
        print(f"FAILED: pykka {version}: {problem}")
    if rc != 0:  # includes 5, "no tests collected"
        print(f"FAILED: pykka {version}: pytest exited {rc}")
        return rc
    return 1 if problems else 0


def main() -> int:
    pinned = importlib.metadata.version("pykka")
    rc = run_suite(pinned, None)
    # The newest 4.x release too, so that an upstream change to the internals the runtime
    # uses is seen the day it ships, not when the pin moves.
    newest = newest_release()
    if newest is None:
        message = "could not reach the package index to find the newest pykka 4.x"
        if os.environ.get("CI", "").lower() == "true":
            print(f"FAILED: {message}")
            return rc or 1
        print(f"SKIPPED (loudly): {message}; only the pinned {pinned} was run", flush=True)
        return rc
    if newest == pinned:
        print(f"the newest pykka 4.x on the index is {newest}, the installed one: covered above")
        return rc
    print(f"the newest pykka 4.x on the index is {newest} (installed: {pinned}); running it")
    return run_suite(newest, install_release(newest)) or rc


if __name__ == "__main__":
    sys.exit(main())
