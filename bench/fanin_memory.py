"""Fan-in throughput and memory of the sharded manager against raw aiohttp, in one run.

Three figures, each against a hand-written aiohttp baseline (a) in the same conditions:

1. **Fan-in throughput.** ``--connections`` (100) WebSocket connections, each streaming
   ``--messages / --connections`` trade events (~150 B), consumed (b) through ONE
   ``ShardedWebSocketManager`` (``max_topics_per_connection=1``, one topic per connection,
   ``subscribe_topics``) and its merged ``iter_messages()``, against (a) one
   ``ws.receive()`` loop per connection decoding every text frame with
   ``msgspec.json.decode``, all in one event loop. The server is a separate process (no GIL
   contention on two cores) that starts streaming on all connections of a run at once, when
   the last one has sent its subscription (a barrier; acknowledgements go out first), so
   that the sharded manager opening its connections one after another does not mix set-up
   with throughput. msg/s counts from the first data message to the last; set-up (first
   connect to every topic acknowledged) is reported separately.
2. **Memory per idle supervised connection.** ``--idle`` (200) connections with one topic
   each, to the demo server's ``/ws``: (b) one sharded manager
   (``max_topics_per_connection=1``, supervised, default liveness: a ping after 10 s of
   silence; its merged stream drained by one task) against (a) the same job in raw aiohttp,
   as figure 3's raw client does it: ``session.ws_connect``, a receive loop decoding with
   msgspec and matching the acknowledgement, the ``SUBSCRIBE`` kept for a replay. For
   information: (b) against a bare ``session.ws_connect`` (no reader, no topic: a connection
   nobody reads), and plain ``WebSocketManager`` connections (the seed's one-connection
   manager: a manager actor and a supervisor of its own each, no topic) against bare ones.
3. **Memory per subscription.** ``--subscriptions`` (2000) topics through one sharded
   manager with ``max_topics_per_connection=--cap`` (1000), against a raw client that sends
   the same 50-topic ``SUBSCRIBE`` batches, waits for the acknowledgements and keeps
   ``{topic: request}`` for replay. The connections' own cost is taken out: the same client
   with as many connections carrying one topic each is measured too, and
   ``per subscription = (B - shards * A / 2) / (S - shards)``. The demo server sends one
   event per topic at once, then one every 1000 s (``--rate 0.001``): nearly idle.

Memory is ``tracemalloc``'s traced memory after ``gc.collect()``, before and after opening,
in the process that holds the connections, after a warm-up that pays one-time costs. Each
memory measurement runs in a fresh child process, so that the RSS delta (``/proc/self/statm``,
for information: whole pages, allocator slack included) is not hidden by memory a previous
measurement freed; the RSS pass runs before ``tracemalloc`` starts, whose bookkeeping would
inflate it. Repetitions alternate a, b, a, b, ...; the table gives medians.

    .venv/bin/python bench/fanin_memory.py             # default, about a minute
    .venv/bin/python bench/fanin_memory.py --quick     # tiny, a few seconds
    .venv/bin/python bench/fanin_memory.py --profile   # + where (b)'s time and memory go
                                                       # (cProfile, tracemalloc; slower)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import itertools
import json
import math
import os
import pstats
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

import _common
import aiohttp
import msgspec

SERVER_START_TIMEOUT = 20.0  # seconds for a server subprocess to print its URL
RUN_TIMEOUT = 120.0  # seconds: a fan-in run that takes longer is reported as a failure
CHILD_TIMEOUT = 120.0  # seconds: a memory child that takes longer is reported as a failure
SETTLE = 0.3  # seconds between opening and measuring (tasks started, first events consumed)
WARM = 2  # connections opened (and kept) before the baseline reading: one-time costs
BATCH = 50  # topics per SUBSCRIBE message (BinanceCodec's default)

FANIN_TARGET = 0.8  # b/a at least
IDLE_TARGET = 1.5  # b/a at most
SUB_TARGET = 2048  # bytes per subscription at most

DEFAULTS = {
    "connections": 100,
    "messages": 200_000,
    "idle": 200,
    "subscriptions": 2000,
    "cap": 1000,
    "reps": 5,
}
QUICK = {
    "connections": 10,
    "messages": 10_000,
    "idle": 20,
    "subscriptions": 200,
    "cap": 100,
    "reps": 1,
}

_encode = msgspec.json.encode
_decode = msgspec.json.decode


# -- 1. fan-in throughput ---------------------------------------------------------------------


def _topic(i: int) -> str:
    return f"s{i:05d}usdt@trade"


def _subscribe_frame(topics: Sequence[str], request_id: int) -> str:
    return _encode({"method": "SUBSCRIBE", "params": list(topics), "id": request_id}).decode()


@dataclass
class FanInRun:
    seconds: float  # first data message to last
    cpu: float  # CPU seconds of this process over the same span
    setup: float  # first connect to every connection open and subscribed


async def fanin_raw(
    session: aiohttp.ClientSession, url: str, conns: int, per_conn: int
) -> FanInRun:
    """(a): one ``ws.receive()`` loop per connection, ``msgspec.json.decode`` per frame."""
    decode = msgspec.json.decode
    subscribed: list[float] = []
    first: list[tuple[float, float]] = []  # wall and CPU clocks at the first data message

    async def one(i: int) -> float:
        async with session.ws_connect(url) as ws:
            await ws.send_str(_subscribe_frame([_topic(i)], i + 1))
            frames = 0
            while frames <= per_conn:  # the acknowledgement (always first), per_conn events
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    decode(msg.data)
                    frames += 1
                    if frames == 1:
                        subscribed.append(time.perf_counter())
                    elif not first:
                        first.append((time.perf_counter(), time.process_time()))
                else:
                    raise RuntimeError(f"{msg.type.name} after {frames} of {per_conn + 1} frames")
            return time.perf_counter()

    start = time.perf_counter()
    ends = await asyncio.gather(*(one(i) for i in range(conns)))
    cpu = time.process_time() - first[0][1]
    return FanInRun(max(ends) - first[0][0], cpu, max(subscribed) - start)


async def fanin_lib(url: str, conns: int, per_conn: int) -> FanInRun:
    """(b): one sharded manager, one topic per connection, its merged ``iter_messages()``."""
    from networkpype.factory import ConnectionManagersFactory

    factory = ConnectionManagersFactory(throttler=_generous_throttler())
    total = conns * per_conn
    try:
        manager = await factory.get_sharded_ws_manager(max_topics_per_connection=1)
        await manager.connect(url)

        async def consume() -> tuple[float, float, float]:
            received, first, first_cpu, last = 0, 0.0, 0.0, None
            messages = manager.iter_messages()
            assert isinstance(messages, AsyncGenerator)  # closed at once after the break
            async with contextlib.aclosing(messages):
                async for message in messages:
                    if not received:
                        first, first_cpu = time.perf_counter(), time.process_time()
                    last = message.data
                    received += 1
                    if received >= total:
                        break
            if received < total:
                raise RuntimeError(f"the merged stream ended after {received} of {total}")
            if not isinstance(last, dict):
                raise RuntimeError(f"expected decoded dicts, got {type(last).__name__}")
            return first, first_cpu, time.perf_counter()

        start = time.perf_counter()
        async with asyncio.TaskGroup() as tasks:
            consumer = tasks.create_task(consume())
            result = await manager.subscribe_topics([_topic(i) for i in range(conns)])
            subscribed = time.perf_counter()
            if result.rejected or manager.connections != conns:
                raise RuntimeError(f"{manager.connections} connections, {result.rejected}")
        first, first_cpu, end = consumer.result()
        cpu = time.process_time() - first_cpu
    finally:
        await factory.close()
    return FanInRun(end - first, cpu, subscribed - start)


def _generous_throttler() -> Any:
    """The factory needs a throttler; these limits never bind (the receive path is measured)."""
    from networkpype.throttler.rate_limit import RateLimit
    from networkpype.throttler.throttler import AsyncThrottler

    return AsyncThrottler(rate_limits=[RateLimit("default", 1_000_000, 1.0)])


@dataclass
class FanIn:
    conns: int
    per_conn: int
    raw: list[FanInRun] = field(default_factory=list)
    lib: list[FanInRun] = field(default_factory=list)
    error: str | None = None
    profile: str = ""
    load: float = 0.0  # 1-minute load average before the servers started (information)

    def busy(self, runs: list[FanInRun]) -> float | None:
        """The client's CPU time over wall time while streaming: near 1 when it, not the
        server or another process, set the pace."""
        return _common.median([r.cpu / r.seconds for r in runs])

    def rate(self, runs: list[FanInRun], clock: str = "seconds") -> float | None:
        """Messages per second of the wall clock, or (``clock="cpu"``) of this process's CPU."""
        seconds = _common.median([getattr(r, clock) for r in runs])
        return self.conns * self.per_conn / seconds if seconds else None


async def measure_fanin(args: argparse.Namespace, base_url: str) -> FanIn:
    groups = itertools.count(1)

    def url(conns: int, per_conn: int) -> str:
        return f"{base_url}?group={next(groups)}&size={conns}&count={per_conn}"

    fanin = FanIn(args.connections, max(1, args.messages // args.connections))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await fanin_raw(session, url(2, 100), 2, 100)  # warm-up: code paths, server templates
        await fanin_lib(url(2, 100), 2, 100)
        for _ in range(args.reps):
            for variant in ("raw", "lib"):
                if variant == "lib" and fanin.error:
                    continue
                gc.collect()
                target = url(fanin.conns, fanin.per_conn)
                try:
                    async with asyncio.timeout(RUN_TIMEOUT):
                        if variant == "raw":
                            run = await fanin_raw(session, target, fanin.conns, fanin.per_conn)
                        else:
                            run = await fanin_lib(target, fanin.conns, fanin.per_conn)
                except Exception as exc:
                    if variant == "raw":
                        raise
                    fanin.error = f"{type(exc).__name__}: {exc}"
                    continue
                (fanin.raw if variant == "raw" else fanin.lib).append(run)
        if args.profile and not fanin.error:
            profiler = cProfile.Profile()
            profiler.enable()
            await fanin_lib(url(fanin.conns, fanin.per_conn), fanin.conns, fanin.per_conn)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
            fanin.profile = out.getvalue()
    return fanin


# -- 2. and 3. memory: the child processes -----------------------------------------------------


class _RawConnections:
    """(a) for memory: bare ``ws_connect`` connections; ``read()`` adds a receive loop each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.pending: dict[int, asyncio.Future[None]] = {}
        self.replay: dict[str, dict[str, Any]] = {}  # topic -> its SUBSCRIBE, for a replay
        self.ids = itertools.count(1)

    async def open(self, n: int) -> list[aiohttp.ClientWebSocketResponse]:
        sockets = await asyncio.gather(*(self.session.ws_connect(self.url) for _ in range(n)))
        self.sockets.extend(sockets)
        return sockets

    def read(self, sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
        for ws in sockets:
            self.readers.append(asyncio.get_running_loop().create_task(self._read(ws)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = _decode(msg.data)
                future = self.pending.pop(data.get("id") or 0, None)
                if future is not None and "result" in data:
                    future.set_result(None)

    async def subscribe(self, topics: list[str], cap: int) -> int:
        """Spread ``topics`` over new connections of ``cap`` topics each; returns how many."""
        shards = math.ceil(len(topics) / cap)
        sockets = await self.open(shards)
        self.read(sockets)
        waits = []
        for s, ws in enumerate(sockets):
            mine = topics[s * cap : (s + 1) * cap]
            for i in range(0, len(mine), BATCH):
                request_id = next(self.ids)
                request = {"method": "SUBSCRIBE", "params": mine[i : i + BATCH], "id": request_id}
                future = self.pending[request_id] = asyncio.get_running_loop().create_future()
                await ws.send_str(_encode(request).decode())
                waits.append(future)
                for topic in mine[i : i + BATCH]:
                    self.replay[topic] = request
        await asyncio.gather(*waits)
        return shards

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets))
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.session.close()


class _LibConnections:
    """(b) for memory: connections of one sharded manager (one topic each), or, ``plain``,
    ``WebSocketManager`` connections; sharded managers for topics."""

    def __init__(self, url: str, plain: bool = False) -> None:
        from networkpype.factory import ConnectionManagersFactory

        self.url = url
        self.plain = plain
        self.factory = ConnectionManagersFactory(throttler=_generous_throttler())
        self.drains: list[asyncio.Task[None]] = []
        self.sharded: Any = None
        self.ids = itertools.count(10**6)  # topics apart from figure 3's

    async def open(self, n: int) -> None:
        if self.plain:
            managers = [await self.factory.get_ws_manager() for _ in range(n)]
            await asyncio.gather(*(m.connect(self.url) for m in managers))
            return
        if self.sharded is None:
            self.sharded = await self.factory.get_sharded_ws_manager(max_topics_per_connection=1)
            await self.sharded.connect(self.url)
            self.drains.append(asyncio.get_running_loop().create_task(self._drain(self.sharded)))
        result = await self.sharded.subscribe_topics([_topic(next(self.ids)) for _ in range(n)])
        if result.rejected:
            raise RuntimeError(f"rejected: {list(result.rejected.items())[:3]}")

    async def subscribe(self, topics: list[str], cap: int) -> int:
        manager = await self.factory.get_sharded_ws_manager(max_topics_per_connection=cap)
        await manager.connect(self.url)
        self.drains.append(asyncio.get_running_loop().create_task(self._drain(manager)))
        result = await manager.subscribe_topics(topics)
        if result.rejected:
            raise RuntimeError(f"rejected: {list(result.rejected.items())[:3]}")
        return manager.connections

    @staticmethod
    async def _drain(manager: Any) -> None:
        async for _ in manager.iter_messages():
            pass

    async def close(self) -> None:
        await self.factory.close()  # ends every merged stream, so the drains return
        await asyncio.gather(*self.drains)


async def _measure_idle(
    client: _RawConnections | _LibConnections, args: argparse.Namespace, read: Any
) -> dict[str, Any]:
    """Bytes per connection of ``args.count`` idle connections with one topic each (raw: and
    of as many bare connections, no topic, no reader)."""
    count = args.count
    raw = isinstance(client, _RawConnections)
    if raw:  # warm-up: the reader's, the subscription's and the bare connect's code paths
        await client.subscribe([_topic(10**6 + i) for i in range(WARM)], 1)
    await client.open(WARM)
    before = read()
    profile = _common.AllocationProfile(args.profile and tracemalloc.is_tracing())
    if raw:
        await client.subscribe([_topic(2 * 10**6 + i) for i in range(count)], 1)
    else:
        await client.open(count)
    await asyncio.sleep(SETTLE)
    out: dict[str, Any] = {"per_connection": (read() - before) / count}
    out["top"] = profile.top(count)
    if raw:
        before = read()
        await client.open(count)
        await asyncio.sleep(SETTLE)
        out["per_connection_bare"] = (read() - before) / count
    return out


async def _measure_subscriptions(
    client: _RawConnections | _LibConnections, args: argparse.Namespace, read: Any
) -> dict[str, Any]:
    """Bytes per subscription of ``args.count`` topics beyond their connections' cost."""
    topics_b = [_topic(i) for i in range(args.count)]  # the caller's strings: not counted
    topics_a = [_topic(args.count + i) for i in range(2)]
    await client.subscribe([_topic(args.count + 2 + i) for i in range(WARM)], 1)
    before = read()
    await client.subscribe(topics_a, 1)  # 2 connections, 1 topic each
    await asyncio.sleep(SETTLE)
    middle = read()
    profile = _common.AllocationProfile(args.profile and tracemalloc.is_tracing())
    shards = await client.subscribe(topics_b, args.cap)
    await asyncio.sleep(SETTLE)
    after = read()
    per_shard = (middle - before) / len(topics_a)  # a connection and its one topic
    return {
        "per_subscription": (after - middle - shards * per_shard) / (len(topics_b) - shards),
        "per_shard": per_shard,
        "shards": shards,
        "top": profile.top(args.count),
    }


async def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One variant of figure 2 or 3: an RSS pass, untraced, then a ``tracemalloc`` pass."""
    measure = _measure_idle if args.child.startswith("idle") else _measure_subscriptions
    out: dict[str, Any] = {}
    for mode in ("rss", "traced"):
        if mode == "traced":
            gc.collect()
            tracemalloc.start(16 if args.profile else 1)  # frames kept per allocation
        client = (
            _RawConnections(args.url)
            if args.child.endswith("raw")
            else _LibConnections(args.url, plain=args.child.endswith("plain"))
        )
        try:
            read = _common.rss_bytes if mode == "rss" else _common.traced_bytes
            out[mode] = await measure(client, args, read)
        finally:
            await client.close()
    return out


def spawn_child(
    kind: str, url: str, count: int, args: argparse.Namespace, profile: bool
) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", kind, "--url", url, "--count", str(count)]
    argv += ["--cap", str(args.cap)] + (["--profile"] if profile else [])
    return _common.run_child(argv, CHILD_TIMEOUT)


# -- the driver --------------------------------------------------------------------------------


@dataclass
class Memory:
    """Child results of one figure, per variant."""

    raw: list[dict[str, Any]] = field(default_factory=list)
    lib: list[dict[str, Any]] = field(default_factory=list)
    plain: list[dict[str, Any]] = field(default_factory=list)  # information only
    error: str | None = None

    def median(self, variant: str, mode: str, key: str) -> float | None:
        runs: list[dict[str, Any]] = getattr(self, variant)
        return _common.median([r[mode][key] for r in runs if key in r[mode]])


def measure_memory(
    kind: str, url: str, count: int, args: argparse.Namespace, variants: Sequence[str]
) -> Memory:
    """Children ``kind-raw``, then each of ``variants`` (``lib``, ``plain``), per repetition."""
    memory = Memory()
    for rep in range(args.reps):
        profile = args.profile and rep == 0  # deep tracebacks are slow: once is enough
        memory.raw.append(spawn_child(f"{kind}-raw", url, count, args, profile))
        for variant in variants:
            if memory.error is None:
                try:
                    result = spawn_child(f"{kind}-{variant}", url, count, args, profile)
                    getattr(memory, variant).append(result)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    memory.error = f"{variant}: {exc}"
    return memory


Row = tuple[str, str, str, str, str, str]


def _row(label: str, b: float | None, a: float | None, fmt: Any, target: str, met: Any) -> Row:
    """A table row; ``met(b, b / a)`` says whether the target is met (None: no target)."""
    ratio = b / a if a and b else None
    verdict = "" if not target else "n/a" if b is None else "met" if met(b, ratio) else "MISSED"
    return label, fmt(b), fmt(a), "n/a" if ratio is None else f"{ratio:.2f}", target, verdict


def print_table(args: argparse.Namespace, fanin: FanIn, idle: Memory, subs: Memory) -> None:
    rate, size = _common.fmt_rate, _common.fmt_bytes
    rows = [
        _row(
            f"1 fan-in msg/s, {fanin.conns} conns x {fanin.per_conn}",
            fanin.rate(fanin.lib),
            fanin.rate(fanin.raw),
            rate,
            f"b/a >= {FANIN_TARGET}",
            lambda b, ratio: ratio is not None and ratio >= FANIN_TARGET,
        ),
        _row(
            "  msg per CPU-second of the client",
            fanin.rate(fanin.lib, "cpu"),
            fanin.rate(fanin.raw, "cpu"),
            rate,
            f"b/a >= {FANIN_TARGET}",
            lambda b, ratio: ratio is not None and ratio >= FANIN_TARGET,
        ),
        _row(
            "2 bytes/idle connection",
            idle.median("lib", "traced", "per_connection"),
            idle.median("raw", "traced", "per_connection"),
            size,
            f"b/a <= {IDLE_TARGET}",
            lambda b, ratio: ratio is not None and ratio <= IDLE_TARGET,
        ),
        _row(
            "  vs a bare ws_connect (information)",
            idle.median("lib", "traced", "per_connection"),
            idle.median("raw", "traced", "per_connection_bare"),
            size,
            "",
            None,
        ),
        _row(
            "  RSS (information)",
            idle.median("lib", "rss", "per_connection"),
            idle.median("raw", "rss", "per_connection"),
            size,
            "",
            None,
        ),
        _row(
            "  WebSocketManager, no topic, vs bare",
            idle.median("plain", "traced", "per_connection"),
            idle.median("raw", "traced", "per_connection_bare"),
            size,
            "",
            None,
        ),
        _row(
            "3 bytes/subscription",
            subs.median("lib", "traced", "per_subscription"),
            subs.median("raw", "traced", "per_subscription"),
            size,
            f"b <= {size(SUB_TARGET)}",
            lambda b, ratio: b <= SUB_TARGET,
        ),
        _row(
            "  RSS (information)",
            subs.median("lib", "rss", "per_subscription"),
            subs.median("raw", "rss", "per_subscription"),
            size,
            "",
            None,
        ),
    ]
    header = ("figure", "(b) networkpype", "(a) raw aiohttp", "b/a", "target", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for n, row in enumerate([header, *rows]):
        cells = [
            f"{cell:<{width}}" if i in (0, 4, 5) else f"{cell:>{width}}"
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("-" * len("  ".join(cells).rstrip()))
    setup_a = _common.median([r.setup for r in fanin.raw])
    setup_b = _common.median([r.setup for r in fanin.lib])
    shards = _common.median([r["traced"]["shards"] for r in subs.lib if "shards" in r["traced"]])
    print(
        f"Medians of {args.reps} interleaved repetitions (a, b, a, b, ...); memory is traced "
        "memory after gc.collect(), RSS is /proc/self/statm.\n"
        "1: msg/s from the first data message to the last (range a "
        f"{_spread(fanin, fanin.raw)}, b {_spread(fanin, fanin.lib)}); set-up (first connect "
        f"to all subscribed) a {_ms(setup_a)}, b {_ms(setup_b)}; client CPU busy a "
        f"{_pct(fanin.busy(fanin.raw))}, b {_pct(fanin.busy(fanin.lib))}; load average "
        f"before: {fanin.load:.2f} on {os.cpu_count()} CPUs.\n"
        f"2: {args.idle} connections, one topic each; (b) one sharded manager, default "
        "liveness; (a) session.ws_connect, a receive loop each, the topic's SUBSCRIBE kept for "
        "a replay. Bare: session.ws_connect alone (no reader, no topic).\n"
        f"3: {args.subscriptions} topics over {shards or 'n/a'} connections (cap {args.cap}); "
        "a connection with one topic, "
        f"{size(subs.median('lib', 'traced', 'per_shard'))} (b) / "
        f"{size(subs.median('raw', 'traced', 'per_shard'))} (a), taken out."
    )
    busy_a = fanin.busy(fanin.raw)
    if busy_a is not None and busy_a < 0.9:
        print(
            "note: (a) kept the client's CPU busy only part of the time: the server or other "
            "processes set the pace, so the msg/s b/a of figure 1 is too kind; msg per "
            "CPU-second is the fairer comparison"
        )
    for name, error in (("1", fanin.error), ("2", idle.error), ("3", subs.error)):
        if error:
            print(f"note: (b) of figure {name} failed: {error}")


def _spread(fanin: FanIn, runs: list[FanInRun]) -> str:
    rates = [fanin.conns * fanin.per_conn / r.seconds for r in runs]
    return f"{min(rates):,.0f}-{max(rates):,.0f}" if rates else "n/a"


def _pct(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction:.0%}"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f} ms"


def print_profile(fanin: FanIn, idle: Memory, subs: Memory) -> None:
    print("\n== profile 1: (b) fan-in, one run under cProfile, by own time ==")
    print(fanin.profile.strip() or "n/a")
    for title, memory, unit in (
        ("2: an idle connection", idle, "connection"),
        ("3: a subscription", subs, "topic, its connections' share included"),
    ):
        for variant, runs in (("(b)", memory.lib), ("(a)", memory.raw)):
            tops = [r["traced"]["top"] for r in runs if r["traced"].get("top")]
            print(f"\n== profile {title}, {variant}: traced growth per {unit} ==")
            print("\n".join(tops[0]) if tops else "n/a")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _common.ArgumentParser(
        prog="fanin_memory",
        description="Fan-in msg/s, bytes per idle connection and per subscription: "
        "networkpype (b) against raw aiohttp (a).",
    )
    pos = _common.positive_int
    for name, help_text in (
        ("connections", "fan-in connections"),
        ("messages", "fan-in messages per run, split over the connections"),
        ("idle", "idle connections"),
        ("subscriptions", "topics subscribed"),
        ("cap", "topics per connection"),
        ("reps", "interleaved repetitions"),
    ):
        default, quick = DEFAULTS[name], QUICK[name]
        parser.add_argument(
            f"--{name}", type=pos, help=f"{help_text} ({default}; --quick: {quick})"
        )
    parser.add_argument("--quick", action="store_true", help="a tiny run (a few seconds)")
    parser.add_argument("--profile", action="store_true", help="where (b)'s cost goes")
    parser.add_argument("--serve-barrier", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=pos, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_barrier:
        asyncio.run(_common.serve_barrier_streams(duration=3600))
        return 0
    if args.child:
        print(json.dumps(asyncio.run(run_child(args))), flush=True)
        return 0
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:  # explicit arguments win over the preset
            setattr(args, name, value)
    if args.connections > 1000:
        parser.error(f"--connections within 1..1000, not {args.connections}")
    print(
        f"fanin_memory: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"msgspec {msgspec.__version__}, {os.cpu_count()} CPUs",
        flush=True,
    )
    started, load = time.perf_counter(), os.getloadavg()[0]
    barrier = [sys.executable, __file__, "--serve-barrier"]
    demo = [sys.executable, "-m", "networkpype.demo.server", "--port", "0", "--duration", "3600"]
    demo += ["--rate", "0.001", "--max-messages", "10"]
    with (
        _common.server_process(barrier, SERVER_START_TIMEOUT) as (fanin_url, _),
        _common.server_process(demo, SERVER_START_TIMEOUT) as (ws_url, _),
    ):
        fanin = asyncio.run(measure_fanin(args, fanin_url))
        fanin.load = load
        print(f"  done: 1 fan-in ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        idle = measure_memory("idle", ws_url, args.idle, args, ("lib", "plain"))
        print(f"  done: 2 idle ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        subs = measure_memory("subs", ws_url, args.subscriptions, args, ("lib",))
        print(f"  done: 3 subscriptions ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print()
    print_table(args, fanin, idle, subs)
    if args.profile:
        print_profile(fanin, idle, subs)
    print(f"total time {time.perf_counter() - started:.1f} s")
    return 1 if fanin.error or idle.error or subs.error else 0


if __name__ == "__main__":
    sys.exit(main())
