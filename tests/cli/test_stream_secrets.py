"""``networkpype stream`` with a token in the URL and the headers: stderr never shows them."""

from __future__ import annotations

import asyncio
import sys

import pytest

from networkpype.testing.scripted import ScriptedServer
from tests.cli.helpers import networkpype
from tests.leaks import CREDENTIALS, assert_hidden, secret_url

TOPICS = ["--topic", "btcusdt@trade"]


@pytest.mark.parametrize(
    ("status", "topics", "credentials"),
    [
        (401, [], "user-info"),
        (503, [], "bearer"),
        (401, TOPICS, "bearer"),
        (503, TOPICS, "user-info"),
    ],
)
async def test_refused_stream_reports_on_stderr_without_secrets(
    status: int, topics: list[str], credentials: str, server: ScriptedServer
) -> None:
    server.status = status
    user_info, headers = CREDENTIALS[credentials]
    url = secret_url(server.port, user_info=user_info)
    header_args = [a for name, value in headers.items() for a in ("--header", f"{name}: {value}")]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "networkpype", "stream", url, *topics, *header_args, "--count", "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert f"HTTP {status}" in stderr and "listenKey=***" in stderr
    assert_hidden(stderr + out.decode())


def test_bad_header_argument_is_not_echoed() -> None:
    proc = networkpype("stream", "ws://127.0.0.1:9/ws", "--header", "Bearer TOPSECRET")
    assert proc.returncode == 2
    assert "Name:value" in proc.stderr
    assert_hidden(proc.stderr)


def test_bad_url_argument_is_not_echoed() -> None:
    proc = networkpype("stream", "http://user:s3cr3t@127.0.0.1:9/ws?listenKey=TOPSECRET")
    assert proc.returncode == 2
    assert "ws://" in proc.stderr
    assert_hidden(proc.stderr)
