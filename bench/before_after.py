"""``iter_messages()`` throughput of two source trees of networkpype, in one run.

Issue 12 asks that the layer redesign lose no throughput: before against after, in the same
run, ``iter_messages()`` on 1 connection (trade and depth messages) and at 100 connections,
within 3 %. This driver starts ``bench/receive.py``'s pre-framed server once (pinned to the
last CPU) and then, ``--reps`` times, for each case and each tree in turn (before, after,
before, after, ...), runs a client process pinned to the first CPU with that tree first on
its ``PYTHONPATH``. The client (this file with ``--client``) times, alternately, a raw
aiohttp ``ws.receive()`` + msgspec loop and ``iter_messages()`` of the seed API
(``WebSocketManager(WebSocketConnection(session))``, which every tree has), ``--pairs``
times, and prints the two median rates. The table gives, per tree, the median ratio
iter_messages / raw (the raw loop is the same code in both trees' clients: it absorbs the
machine's drift between processes) and after / before of those ratios.

    .venv/bin/python bench/before_after.py --before /tmp/tree_27c8071   # after: this checkout
    .venv/bin/python bench/before_after.py --before DIR --fallback --cases trade  # public path

Make a tree with ``git archive <commit> | tar -x -C DIR``. Loopback only; every run is
bounded by ``--messages`` and ``RUN_TIMEOUT``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from _common import ArgumentParser, positive_int, server_process

HERE = Path(__file__).resolve().parent
RUN_TIMEOUT = 120.0  # seconds for one client process
SERVER_START_TIMEOUT = 20.0
CASES = {  # name: (kind, connections, share of --messages per connection)
    "trade": ("trade", 1, 1.0),
    "depth": ("book", 1, 0.25),
    "trade x100": ("trade", 100, 0.01),
}


# -- the client (runs with one tree first on sys.path) -------------------------------------


async def _timed_raw(url: str, connections: int, per_conn: int) -> float:
    decode = msgspec.json.Decoder().decode
    connector = aiohttp.TCPConnector(limit=connections + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = [await session.ws_connect(url, autoping=False) for _ in range(connections)]

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            received = 0
            while received < per_conn:
                msg = await ws.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"stream ended after {received} of {per_conn}")
                decode(msg.data)
                received += 1

        started = time.monotonic()
        await asyncio.gather(*(ws.send_str("go") for ws in sockets))
        await asyncio.gather(*(read(ws) for ws in sockets))
        seconds = time.monotonic() - started
        await asyncio.gather(*(ws.close() for ws in sockets))
        return seconds


async def _timed_library(url: str, connections: int, per_conn: int, fallback: bool) -> float:
    from networkpype.websocket.connection import WebSocketConnection
    from networkpype.websocket.manager import WebSocketManager
    from networkpype.websocket.request import WebSocketJSONRequest

    connector = aiohttp.TCPConnector(limit=connections + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        managers = []
        if fallback:  # read at connect()
            WebSocketConnection.fast_path_allowed = False
        for _ in range(connections):
            manager = WebSocketManager(WebSocketConnection(session))
            await manager.connect(url)
            managers.append(manager)

        async def read(manager: Any) -> None:
            received = 0
            async for _message in manager.iter_messages():
                received += 1
                if received >= per_conn:
                    return
            raise RuntimeError(f"stream ended after {received} of {per_conn}")

        go = WebSocketJSONRequest(payload="go")
        started = time.monotonic()
        await asyncio.gather(*(manager.send(go) for manager in managers))
        await asyncio.gather(*(read(manager) for manager in managers))
        seconds = time.monotonic() - started
        await asyncio.gather(*(manager.disconnect() for manager in managers))
        return seconds


async def client(
    url: str, connections: int, per_conn: int, pairs: int, fallback: bool
) -> dict[str, float]:
    raw: list[float] = []
    lib: list[float] = []
    await _timed_library(url, 1, min(per_conn, 1000), fallback)  # warm-up: imports, code paths
    for _ in range(pairs):
        raw.append(await _timed_raw(url, connections, per_conn))
        lib.append(await _timed_library(url, connections, per_conn, fallback))
    total = connections * per_conn
    return {"raw": total / statistics.median(raw), "lib": total / statistics.median(lib)}


# -- the driver ----------------------------------------------------------------------------


def _run_client(tree: Path, url: str, case: str, args: argparse.Namespace) -> dict[str, Any]:
    kind, connections, share = CASES[case]
    per_conn = max(1, int(args.messages * share))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--client",
        f"{url}?kind={kind}&count={per_conn}",
        "--connections",
        str(connections),
        "--per-conn",
        str(per_conn),
        "--pairs",
        str(args.pairs),
        *(["--fallback"] if args.fallback else []),
    ]
    out = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"client for {tree} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _tree_label(tree: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        head = ""
    return f"{tree} ({head})" if head else str(tree)


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="before_after", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="the source tree before (a directory)")
    parser.add_argument(
        "--after", type=Path, default=HERE.parent, help="the tree after (default: this one)"
    )
    parser.add_argument("--reps", type=positive_int, default=5, help="client runs per tree")
    parser.add_argument("--pairs", type=positive_int, default=3, help="raw/lib pairs a run")
    parser.add_argument("--messages", type=positive_int, default=100_000, help="trade per run")
    parser.add_argument("--cases", default=",".join(CASES), help="trade, depth, trade x100")
    parser.add_argument(
        "--fallback",
        action="store_true",
        help="iter_messages() on the public receive() path only "
        "(WebSocketConnection.fast_path_allowed = False; bench/receive.py's fallback)",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=positive_int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--per-conn", type=positive_int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        result = asyncio.run(
            client(args.client, args.connections, args.per_conn, args.pairs, args.fallback)
        )
        print(json.dumps(result))
        return 0
    if args.before is None:
        parser.error("--before DIR is required")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}: use {', '.join(CASES)}")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, tree in trees.items():
        if not (tree / "networkpype" / "__init__.py").is_file():
            parser.error(f"--{name} {tree}: no networkpype package there")
    ratios: dict[tuple[str, str], list[float]] = {}
    started = time.monotonic()
    command = [sys.executable, str(HERE / "receive.py"), "--serve", "3600"]
    with server_process(command, SERVER_START_TIMEOUT) as (url, _pid):
        for name, tree in trees.items():
            print(f"{name}: {_tree_label(tree)}", flush=True)
        for rep in range(args.reps):
            for case in cases:
                for name, tree in trees.items():
                    rates = _run_client(tree, url, case, args)
                    ratios.setdefault((case, name), []).append(rates["lib"] / rates["raw"])
            print(f"  rep {rep + 1} of {args.reps} done", file=sys.stderr, flush=True)
    print()
    if args.fallback:
        print("iter_messages() on the public path (fast_path_allowed = False)")
    print(f"{'case':<12} {'before lib/raw':>15} {'after lib/raw':>14} {'after/before':>13}")
    for case in cases:
        before = statistics.median(ratios[(case, "before")])
        after = statistics.median(ratios[(case, "after")])
        print(f"{case:<12} {before:>15.3f} {after:>14.3f} {after / before:>13.3f}")
    print(
        f"(medians of {args.reps} client runs per tree, each the median of {args.pairs} "
        f"interleaved raw/iter_messages pairs; total {time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
