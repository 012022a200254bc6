"""Memory per idle supervised connection: networkpype against aiohttp, in one run.

Issue 12, item 7: an idle supervised connection (plain manager, one subscription) at most
1.5x an aiohttp connection with its receive loop and the subscription kept for replay.

``--connections`` (200) idle connections to a loopback aiohttp server (``/fanin`` of
``_common.serve_barrier_streams``, in a separate process: its memory is not counted), which
acknowledges each subscription (``{"result": null, "id": n}``) and then sends nothing. In the
measuring process, one of:

- (a) ``raw``: one ``aiohttp.ClientSession``; per connection ``session.ws_connect``, a
  receive-loop task decoding each text frame with msgspec and matching the acknowledgement,
  and the ``SUBSCRIBE`` request kept in a list (for a replay after a reconnection).
- (b) ``plain``: what a user of one manager per stream pays (the issue's figure): one
  ``ConnectionManagersFactory``; per connection ``factory.get_ws_manager()`` (default
  settings: supervised, a ping after 10 s of silence), ``connect(url)``,
  ``subscribe(one WebSocketJSONRequest)`` and a consumer task waiting in
  ``iter_messages()``.
- (c) ``sharded``, for information: the same connections as ONE manager, a
  ``ShardedWebSocketManager`` with ``max_topics_per_connection=1`` (one topic per
  connection, ``subscribe_topics``), its merged stream drained by one task.

Per connection = (traced memory after opening - before) / connections, after
``gc.collect()`` and a warm-up of 2 connections that pays one-time costs (imports, code
paths, the session). Each figure comes from a fresh child process (no variant pollutes
another); a child first takes the RSS delta (``/proc/self/statm``: whole pages, allocator
slack included), untraced, then the ``tracemalloc`` pass. Repetitions alternate
a, b, c, a, b, c, ...; the table gives medians. Tasks per connection (``asyncio.all_tasks``
delta) are printed too.

    .venv/bin/python bench/idle_memory.py              # default: 200 connections, 5 reps
    .venv/bin/python bench/idle_memory.py --quick      # 20 connections, 1 rep
    .venv/bin/python bench/idle_memory.py --profile    # + where the bytes go (file:line)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import _common
import aiohttp
import fanin_memory

SERVER_START_TIMEOUT = 20.0  # seconds for the server subprocess to print its URL
CHILD_TIMEOUT = 180.0  # seconds: a child that takes longer is reported as a failure
SETTLE_TIMEOUT = 30.0  # seconds: every acknowledgement consumed within this, or a failure
SETTLE = 0.2  # seconds after the last acknowledgement (timers armed, tasks parked)
QUIET_CHECKS = 5  # the task count unchanged this many times, SETTLE / 4 apart: settled
WARM = 2  # connections opened (and kept) before the baseline reading: one-time costs
TARGET = 1.5  # plain / raw at most
VARIANTS = ("raw", "plain", "sharded")


def _subscribe(i: int) -> dict[str, Any]:
    """The one subscription of connection ``i``, as (a) sends it."""
    return {"method": "SUBSCRIBE", "params": [fanin_memory._topic(i)], "id": i}


class _Raw:
    """(a): ``ws_connect``, a receive loop each, the ``SUBSCRIBE`` kept for a replay
    (``fanin_memory``'s raw client, one topic per connection)."""

    def __init__(self, url: str) -> None:
        self.client = fanin_memory._RawConnections(url)

    async def open(self, ids: Sequence[int]) -> None:
        async with asyncio.timeout(SETTLE_TIMEOUT):
            await self.client.subscribe([fanin_memory._topic(i) for i in ids], 1)

    async def close(self) -> None:
        await self.client.close()


class _Plain:
    """(b): a ``WebSocketManager`` per connection, one subscription, a consumer each."""

    def __init__(self, url: str) -> None:
        self.url = url
        from networkpype.factory import ConnectionManagersFactory

        self.factory = ConnectionManagersFactory(throttler=fanin_memory._generous_throttler())
        self.consumers: list[asyncio.Task[None]] = []
        self.received = 0
        self.arrived = asyncio.Event()
        self.expected = 0

    async def open(self, ids: Sequence[int]) -> None:
        from networkpype.websocket.request import WebSocketJSONRequest

        self.expected += len(ids)
        self.arrived.clear()
        managers = [await self.factory.get_ws_manager() for _ in ids]
        await asyncio.gather(*(manager.connect(self.url) for manager in managers))
        loop = asyncio.get_running_loop()
        for i, manager in zip(ids, managers, strict=True):
            self.consumers.append(loop.create_task(self._consume(manager)))
            await manager.subscribe(WebSocketJSONRequest(payload=_subscribe(i)))
        async with asyncio.timeout(SETTLE_TIMEOUT):
            while self.received < self.expected:
                await self.arrived.wait()
                self.arrived.clear()

    async def _consume(self, manager: Any) -> None:
        async for _message in manager.iter_messages():
            self.received += 1  # the acknowledgement
            self.arrived.set()

    async def close(self) -> None:
        await self.factory.close()  # disconnects every manager: the consumers return
        await asyncio.gather(*self.consumers)


class _Sharded:
    """(c): one sharded manager, one topic per connection (``fanin_memory``'s client)."""

    def __init__(self, url: str) -> None:
        self.client = fanin_memory._LibConnections(url)

    async def open(self, ids: Sequence[int]) -> None:
        async with asyncio.timeout(SETTLE_TIMEOUT):
            await self.client.open(len(ids))

    async def close(self) -> None:
        await self.client.close()


_CLIENTS: dict[str, Callable[[str], _Raw | _Plain | _Sharded]] = {
    "raw": _Raw,
    "plain": _Plain,
    "sharded": _Sharded,
}


async def _settle() -> None:
    """Wait ``SETTLE``, then until the loop's tasks stop changing in number (on a loaded
    machine, actors may still be serving their last messages), at most ``SETTLE_TIMEOUT``:
    what is measured is the idle state, not a transient one."""
    await asyncio.sleep(SETTLE)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    counts = [len(asyncio.all_tasks())]
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE / 4)
        counts = [*counts[-(QUIET_CHECKS - 1) :], len(asyncio.all_tasks())]
        if len(counts) == QUIET_CHECKS and len(set(counts)) == 1:
            return


async def _measure(
    variant: str, url: str, count: int, read: Callable[[], int], profile: bool
) -> dict[str, Any]:
    client = _CLIENTS[variant](url)
    ids = itertools.count(1)
    try:
        await client.open([next(ids) for _ in range(WARM)])
        await _settle()
        tasks = len(asyncio.all_tasks())
        before = read()
        where = _common.AllocationProfile(profile)
        await client.open([next(ids) for _ in range(count)])
        await _settle()
        after = read()
        return {
            "per_connection": (after - before) / count,
            "tasks": (len(asyncio.all_tasks()) - tasks) / count,
            "top": where.top(count, 40, by_line=True),
        }
    finally:
        await client.close()


async def run_child(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("rss", "traced"):
        if mode == "traced":
            gc.collect()
            tracemalloc.start(25 if args.profile else 1)  # frames kept per allocation
        read = _common.rss_bytes if mode == "rss" else _common.traced_bytes
        out[mode] = await _measure(
            args.child, args.url, args.count, read, args.profile and mode == "traced"
        )
    return out


def spawn_child(variant: str, url: str, args: argparse.Namespace, profile: bool) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", variant, "--url", url]
    argv += ["--count", str(args.connections)] + (["--profile"] if profile else [])
    return _common.run_child(argv, CHILD_TIMEOUT)


def _median(runs: list[dict[str, Any]], mode: str, key: str) -> float | None:
    return _common.median([run[mode][key] for run in runs])


def print_table(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]]) -> bool:
    size = _common.fmt_bytes
    raw = _median(runs["raw"], "traced", "per_connection")
    rows = []
    met = False
    for variant, label in (
        ("raw", "(a) aiohttp: ws_connect + receive loop + SUBSCRIBE kept"),
        ("plain", "(b) WebSocketManager per connection, 1 subscription"),
        ("sharded", "(c) one sharded manager, 1 topic per connection"),
    ):
        traced = _median(runs[variant], "traced", "per_connection")
        rss = _median(runs[variant], "rss", "per_connection")
        tasks = _median(runs[variant], "traced", "tasks")
        ratio = traced / raw if traced is not None and raw else None
        verdict = ""
        if variant == "plain":
            met = ratio is not None and ratio <= TARGET
            verdict = f"<= {TARGET}: {'met' if met else 'MISSED'}"
        rows.append(
            (
                label,
                size(traced),
                "n/a" if ratio is None else f"{ratio:.2f}",
                size(rss),
                "n/a" if tasks is None else f"{tasks:.1f}",
                verdict,
            )
        )
    header = ("per idle connection", "traced", "x (a)", "RSS", "tasks", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for n, row in enumerate([header, *rows]):
        cells = [
            f"{cell:<{width}}" if i in (0, 5) else f"{cell:>{width}}"
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("-" * len("  ".join(cells).rstrip()))
    spread = [run["traced"]["per_connection"] for run in runs["plain"]]
    print(
        f"Medians of {args.reps} interleaved repetitions, {args.connections} connections each, "
        "a fresh process per variant and repetition; traced = tracemalloc after gc.collect(), "
        "RSS = /proc/self/statm delta (information). (b) range: "
        + ", ".join(size(value) for value in spread)
    )
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.ArgumentParser(
        prog="idle_memory",
        description="Bytes per idle supervised connection: networkpype against aiohttp.",
    )
    pos = _common.positive_int
    parser.add_argument("--connections", type=pos, help="idle connections (200; --quick: 20)")
    parser.add_argument("--reps", type=pos, help="interleaved repetitions (5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (a few seconds)")
    parser.add_argument("--profile", action="store_true", help="where the bytes go")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=pos, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(run_child(args))), flush=True)
        return 0
    if args.connections is None:
        args.connections = 20 if args.quick else 200
    if args.reps is None:
        args.reps = 1 if args.quick else 5
    if args.connections > 1000:
        parser.error(f"--connections within 1..1000, not {args.connections}")
    print(
        f"idle_memory: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    server = [sys.executable, fanin_memory.__file__, "--serve-barrier"]
    with _common.server_process(server, SERVER_START_TIMEOUT) as (base, _):
        # Every connection is a group of one that streams nothing: acknowledged, then idle.
        url = f"{base}?group=idle&size=1&count=0"
        for rep in range(args.reps):
            for variant in VARIANTS:
                runs[variant].append(spawn_child(variant, url, args, args.profile and rep == 0))
            print(
                f"  done: repetition {rep + 1} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    print()
    met = print_table(args, runs)
    if args.profile:
        for variant in VARIANTS:
            print(f"\n== where the bytes of one idle connection go: {variant} (traced) ==")
            print("\n".join(runs[variant][0]["traced"]["top"]) or "n/a")
    print(f"total time {time.perf_counter() - started:.1f} s")
    del met  # the verdict is printed; the exit status says the run worked
    return 0


if __name__ == "__main__":
    sys.exit(main())
