"""Invalid arguments: exit status 2 and one readable line on stderr, for every command."""

from __future__ import annotations

import pytest

from tests.cli.helpers import networkpype


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "required"),
        (("launch",), "invalid choice"),
        (("demo", "--duration", "0"), "--duration"),
        (("demo", "--duration", "2"), "at least 5"),
        (("demo", "--topics", "0"), "--topics"),
        (("demo", "--topics", "btcusdt@nope"), "btcusdt@nope"),
        (("demo", "--seed", "x"), "--seed"),
        (("demo", "--unknown"), "unrecognized"),
        (("stream",), "URL"),
        (("stream", "not a url"), "not a"),
        (("stream", "http://127.0.0.1:9/ws"), "ws://"),
        (("stream", "ws://127.0.0.1:9/ws", "--subscribe", "{bad json"), "not valid JSON"),
        (("stream", "ws://127.0.0.1:9/ws", "--subscribe", "[1, 2]"), "not a JSON object"),
        (("stream", "ws://127.0.0.1:9/ws", "--count", "-3"), "at least 1"),
        (("stream", "ws://127.0.0.1:9/ws", "--duration", "-1"), "--duration"),
        (("stream", "ws://127.0.0.1:9/ws", "--ping-interval", "-0.5"), "--ping-interval"),
        (("stream", "ws://127.0.0.1:9/ws", "--pong-timeout", "0"), "--pong-timeout"),
        (("stream", "ws://127.0.0.1:9/ws", "--max-msg-size", "-1"), "--max-msg-size"),
        (("stream", "ws://127.0.0.1:9/ws", "--header", "no colon"), "Name:value"),
        (("stream", "ws://127.0.0.1:9/ws", "--codec", "nope"), "--codec"),
        (("stream", "ws://127.0.0.1:9/ws", "--bogus"), "unrecognized"),
        (("bench", "--only", "nope"), "unknown program"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: tuple[str, ...], says: str) -> None:
    proc = networkpype(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("networkpype"), lines[0]
    assert "error:" in lines[0]
    assert says in lines[0]
    assert proc.stdout == ""


def test_help_lists_the_commands() -> None:
    proc = networkpype("--help")
    assert proc.returncode == 0
    for command in ("demo", "stream", "bench"):
        assert command in proc.stdout
