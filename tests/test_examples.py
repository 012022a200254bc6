"""Every program under examples/ runs to completion and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from networkpype.demo import DemoServerThread

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 30.0  # seconds; each example takes about one

# example -> patterns its output must contain, in this order
EXPECTED: dict[str, list[str]] = {
    "connection_basic.py": [
        r"^received: \{'result': None, 'id': 1\}$",
        *(
            rf"^received: \{{'e': 'trade', .*'seq': {n}, 'stream': 'btcusdt@trade'\}}$"
            for n in range(1, 5)
        ),
        r"^disconnected: connected=False$",
    ],
    "manager_subscribe.py": [
        r"^btcusdt@trade seq=1 price=\d+\.\d{8} qty=\d+\.\d{8}$",
        r"^ethusdt@trade seq=5 price=",
        r"^btcusdt@trade: \d+ events, seq 1\.\.\d+ without gaps: True$",
        r"^ethusdt@trade: \d+ events, seq 1\.\.\d+ without gaps: True$",
    ],
    "send_messages.py": [
        r"^json echo: type=subscribe channel=orderbook$",
        r"^signed with apiKey=demo-key timestamp=\d{13}$",
        r"^signature valid: True$",
        r"^caller's payload untouched: \{'type': 'subscribe', 'channel': 'orderbook'\}$",
        r"^text reply: PONG$",
    ],
    "processors.py": [
        r"^echo: \{'type': 'hello', 'timestamp': 1234567890\}$",
        r"^echo: \{'type': 'bye', 'timestamp': 1234567890\}$",
        r"^heartbeats filtered: 2$",
        r"^caller's payloads untouched: \{'type': 'hello'\}$",
    ],
    "receive_single.py": [
        r"^ack: \{'result': None, 'id': 1\}$",
        r"^trade: BTCUSDT seq=1 price=\d+\.\d{8} qty=\d+\.\d{8}$",
        r"^after disconnect, receive\(\) returns None$",
    ],
    "book_bot.py": [
        r"^5 books valid; trading$",
        r"^venue: two diffs of ETHUSDT lost$",
        r"^ETHUSDT: not valid: sequence gap$",
        r"^ETHUSDT: valid again after \d+ ms$",
        r"^venue: stale snapshots, 1 connection reset$",
        r"^BTCUSDT: not valid: shard1 disconnected$",
        r"^BTCUSDT: valid again after \d+ ms$",
        r"^quotes: \d+, from books that were wrong: 0$",
        r"^REST limit violations at the venue: 0$",
    ],
    "connection_health.py": [
        r"^received 3 trades; last data frame \d+\.\d\d s ago$",
        r"^unsubscribed: the connection is now silent$",
        r"^idle for \d\.\d\d s \(> 0\.5 s\): sent a ping$",
        r"^application-level PING answered: PONG$",
        r"^last_recv_time advanced: True$",
    ],
}


def run_example(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NETWORKPYPE_DEMO_URL"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def assert_in_order(output: str, patterns: list[str]) -> None:
    position = 0
    for pattern in patterns:
        found = re.compile(pattern, re.MULTILINE).search(output, position)
        assert found, f"{pattern!r} not found (in order) in:\n{output}"
        position = found.end()


def test_every_example_is_covered() -> None:
    # Each example is run by this module or named by another test module that runs it.
    here = Path(__file__).parent
    others = "".join(p.read_text() for p in here.glob("test_*.py") if p.name != Path(__file__).name)
    missing = [
        p.name for p in EXAMPLES.glob("*.py") if p.name not in EXPECTED and p.name not in others
    ]
    assert missing == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_with_its_own_server(name: str) -> None:
    assert_in_order(run_example(name), EXPECTED[name])


def test_example_against_a_given_server() -> None:
    with DemoServerThread(rate=20) as server:
        output = run_example("manager_subscribe.py", "--url", server.url)
        stats = server.statistics()
    assert_in_order(output, EXPECTED["manager_subscribe.py"])
    assert stats.connections_accepted == 1
    assert stats.connections[0].messages_received == 1  # the one SUBSCRIBE


def test_embed_sync_example() -> None:
    assert_in_order(
        run_example("embed_sync.py"),
        [
            r"^connected: True$",
            r"^control: subscribed btcusdt@trade$",
            r"^control: subscribed ethusdt@trade$",
            r"^control: unsubscribed btcusdt@trade$",
            r"^reader: acks=3 btcusdt@trade=[1-9]\d* ethusdt@trade=[1-9]\d*$",
            r"^btcusdt@trade after its unsubscribe: 0$",
            r"^clean shutdown: stop\(\) took 0\.\d\d s, reader ended: True, "
            r"threads left: 0, actors left: 0$",
        ],
    )


def test_embed_pykka_host_example() -> None:
    started = r"^host: subsystem started from thread Host-\d+ \(its actors run on networkpype-loop"
    assert_in_order(
        run_example("embed_pykka_host.py"),
        [
            started,
            r"^host read: 10 trades, seq 1\.\.10$",
            r"^host: subsystem stopped in 0\.\d\d s$",
            started,
            r"^host: pointed the subsystem at a venue that will refuse reconnection with 403$",
            r"^venue: revokes the key: closes the session with 1001, refuses reconnections",
            r"^host reader: GaveUpError: gave up on connection ws\d+: fatal: "
            r"HandshakeRejectedError: .*HTTP 403",
            r"^host told: ChildGaveUp child=ws\d+ reason=fatal: HandshakeRejectedError: .*403",
            r"^host was told by its child: True$",
            r"^host: subsystem stopped in 0\.\d\d s$",
            r"^clean shutdown: actors left: 0, threads left: \['networkpype-loop'\]",
        ],
    )
