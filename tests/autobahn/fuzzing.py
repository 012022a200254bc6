"""The Autobahn|Testsuite fuzzing server: its Python 2.7 environment and a loopback-only run.

``wstest`` (autobahntestsuite) runs on Python 2.7 only. :func:`ensure_wstest` builds a
virtualenv for it under ``.cache/autobahn/`` once (``virtualenv<20.22``, the last that makes
2.7 environments, in a small Python 3 venv beside it; then the pinned packages below) and
reuses it while the pins are unchanged. :func:`run_fuzzing` runs the server and the echo
client (:mod:`tests.autobahn.echo_client`) together in a new network namespace that has only
loopback: ``wstest -m fuzzingserver`` binds 0.0.0.0, so nothing of it can listen beyond this
machine. Inside (``python -m tests.autobahn.fuzzing``), a free port is taken, the spec
written, the server started, the client run against it and the server stopped; the report
(``index.json``) is read back outside. Every step has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "autobahn"

PINS = (
    "autobahntestsuite==25.10.1",
    "autobahn[accelerate,twisted]==0.10.9",
    "Twisted==19.10.0",
    "txaio==2.1.0",
    "incremental==16.10.1",
    "pyOpenSSL==19.1.0",
    "cryptography==3.3.2",
    "zope.interface==4.6.0",
    "jinja2==2.11.3",
    "markupsafe==1.1.1",
    "Werkzeug==1.0.1",
    "klein==17.10.0",
    "service_identity==18.1.0",
    "unittest2==1.1.0",
    "six==1.16.0",
    "setuptools==44.0.0",
)
BOOTSTRAP_PIN = "virtualenv<20.22"
BUILD_TIMEOUT = 600.0  # seconds for each install step (a cold pip cache downloads ~20 MB)
SERVER_START_TIMEOUT = 60.0  # seconds until the fuzzing server accepts connections
STOP_TIMEOUT = 10.0


class Unavailable(Exception):
    """The fuzzing server cannot run here (no Python 2.7, no network namespace, no packages)."""


# -- the Python 2.7 environment ----------------------------------------------------------------


def find_python27() -> Path | None:
    """A Python 2.7 interpreter: ``$AUTOBAHN_PYTHON27``, pyenv's 2.7.18, or ``python2.7``."""
    candidates: list[str] = []
    if os.environ.get("AUTOBAHN_PYTHON27"):
        candidates.append(os.environ["AUTOBAHN_PYTHON27"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            prefix = subprocess.run(
                [pyenv, "prefix", "2.7.18"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if prefix:
                candidates.append(str(Path(prefix) / "bin" / "python2.7"))
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in root.glob("versions/2.7*/bin/python2.7"))
    if shutil.which("python2.7"):
        candidates.append(str(shutil.which("python2.7")))
    for candidate in candidates:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            probe = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if probe.returncode == 0 and probe.stdout.strip() == "2.7":
                return Path(candidate)
    return None


def _pins_digest(python27: Path) -> str:
    text = "\n".join((str(python27), BOOTSTRAP_PIN, *PINS))
    return hashlib.sha256(text.encode()).hexdigest()


def _step(args: Sequence[str | Path], what: str, env: dict[str, str] | None = None) -> None:
    try:
        proc = subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{what}: no end within {BUILD_TIMEOUT:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise Unavailable(f"{what} failed (exit {proc.returncode}):\n{tail}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time: engineers and CI may share a checkout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_wstest(cache: Path = CACHE) -> Path:
    """The ``wstest`` program of the cached 2.7 environment, built when missing or stale.

    Raises :class:`Unavailable` (with the reason) when Python 2.7 or the packages cannot be
    had. The environment is complete only once its stamp is written: an interrupted build
    is removed and made again.
    """
    python27 = find_python27()
    if python27 is None:
        raise Unavailable(
            "no Python 2.7 found (looked at $AUTOBAHN_PYTHON27, `pyenv prefix 2.7.18`, "
            "~/.pyenv/versions/2.7*, python2.7 on PATH); the fuzzing server needs it"
        )
    env_dir, boot_dir = cache / "py27", cache / "bootstrap"
    wstest, stamp = env_dir / "bin" / "wstest", env_dir / ".networkpype-pins"
    digest = _pins_digest(python27)
    with _locked(cache / ".lock"):
        if stamp.exists() and stamp.read_text() == digest and wstest.exists():
            return wstest
        shutil.rmtree(env_dir, ignore_errors=True)
        pip_env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        boot_python = boot_dir / "bin" / "python"
        if not (boot_dir / "bin" / "virtualenv").exists():
            shutil.rmtree(boot_dir, ignore_errors=True)
            _step([sys.executable, "-m", "venv", boot_dir], "creating the bootstrap venv")
            _step(
                [boot_python, "-m", "pip", "install", "-q", BOOTSTRAP_PIN],
                f"installing {BOOTSTRAP_PIN}",
                pip_env,
            )
        _step(
            [boot_dir / "bin" / "virtualenv", "-q", "-p", python27, env_dir],
            "creating the Python 2.7 virtualenv",
        )
        _step(
            [env_dir / "bin" / "pip", "install", "-q", "--no-warn-script-location", *PINS],
            "installing autobahntestsuite and its pins",
            pip_env,
        )
        if not wstest.exists():
            raise Unavailable(f"{wstest} missing after the install")
        stamp.write_text(digest)
    return wstest


# -- one run, in a network namespace with only loopback ----------------------------------------


def _unshare_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        raise Unavailable("`unshare` (util-linux) is missing: no loopback-only namespace")
    # As root a network namespace is ours to make; otherwise a user namespace maps us to root.
    return [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-r", "-n"]


def run_fuzzing(
    wstest: Path,
    cases: Sequence[str],
    outdir: Path,
    *,
    apis: Sequence[str] = ("connection", "manager"),
    compress: bool = False,
    paths: Sequence[str] = ("hook",),
    timeout: float = 300.0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Run ``cases`` (Autobahn patterns such as ``"6.*"``) against each echo client of
    ``apis`` on each reader path of ``paths`` (see :mod:`tests.autobahn.echo_client`) in a
    loopback-only network namespace;
    returns the report: agent -> case id -> result (``behavior``, ``behaviorClose``, ...).
    Raises ``RuntimeError`` when the run fails or exceeds ``timeout`` seconds,
    :class:`Unavailable` when no namespace can be made."""
    outdir.mkdir(parents=True, exist_ok=True)
    command = [
        *_unshare_prefix(),
        sys.executable,
        "-m",
        "tests.autobahn.fuzzing",
        "--wstest",
        str(wstest),
        "--outdir",
        str(outdir),
        "--apis",
        ",".join(apis),
        "--cases",
        ",".join(cases),
        *(["--compress"] if compress else []),
        "--paths",
        ",".join(paths),
    ]
    # A session of its own: on a timeout the whole group (the driver, wstest) is killed, so
    # no fuzzing server outlives the run.
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"the Autobahn run took over {timeout:.0f} s") from exc
    finally:
        if proc.poll() is None:  # interrupted (KeyboardInterrupt): leave nothing behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = out.strip()
    if proc.returncode != 0:
        if "unshare" in log and ("Operation not permitted" in log or "failed" in log):
            raise Unavailable(f"no network namespace could be made:\n{log[-2000:]}")
        raise RuntimeError(f"the Autobahn run failed (exit {proc.returncode}):\n{log[-4000:]}")
    index = outdir / "index.json"
    if not index.exists():
        raise RuntimeError(f"no report at {index}:\n{log[-4000:]}")
    report: dict[str, dict[str, dict[str, Any]]] = json.loads(index.read_text())
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"wstest exited with {server.returncode} before listening")
        with socket.socket() as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"wstest did not listen on port {port} within {SERVER_START_TIMEOUT} s")


def _inside(args: argparse.Namespace) -> int:
    """In the namespace: loopback up, the server on a free port, the client, the server down."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    outdir = Path(args.outdir)
    port = _free_port()
    spec = {
        "url": f"ws://127.0.0.1:{port}",
        "outdir": str(outdir),
        "cases": args.cases.split(","),
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_path = outdir / "fuzzingserver.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    with (outdir / "wstest.log").open("wb") as server_log:
        server = subprocess.Popen(
            [args.wstest, "-m", "fuzzingserver", "-s", str(spec_path)],
            cwd=outdir,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_listening(port, server)
            from tests.autobahn.echo_client import agent_name, run

            for api in args.apis.split(","):
                for path in args.paths.split(","):
                    count = asyncio.run(run(f"ws://127.0.0.1:{port}", api, args.compress, path))
                    agent = agent_name(api, args.compress, path)
                    print(f"{count} cases run as {agent} on port {port}")
        finally:
            server.terminate()
            try:
                server.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run inside a loopback-only namespace")
    parser.add_argument("--wstest", required=True)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--apis", required=True, help="echo clients: connection,manager")
    parser.add_argument("--cases", required=True, help="comma-separated, e.g. 1.*,2.*")
    parser.add_argument("--compress", action="store_true")
    parser.add_argument("--paths", default="hook", help="reader paths: hook,fast,fallback")
    return _inside(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
