"""WebSocket receive throughput: networkpype's manager against a raw aiohttp loop, in one run.

Both variants read the DemoServer's ``/stream`` endpoint over loopback (the server runs in a
subprocess, so on a multi-core machine it does not compete with the client for the GIL) and
decode every text frame to a ``dict`` with msgspec:

(a) raw: ``aiohttp`` ``ws.receive()`` in a loop, ``msgspec.json.decode(msg.data)`` per frame;
(b) networkpype: ``ConnectionManagersFactory(...).get_ws_manager()``, ``connect``, then
    ``async for message in ws_manager.iter_messages()``.

Each case (payload x connection count x compression) is run ``--reps`` times as a, b, a, b,
...; the table gives the median messages per second of each and the ratio b/a. With
``--compress on`` both variants offer permessage-deflate (window bits 15) and the server
compresses every frame (see ``networkpype.demo._bench_stream``); the table then also gives
the bytes per message on the wire, the payload's and what a server compressing with context
takeover (zlib's default level, as aiohttp's) would send. A run's clock starts before
the connections are opened and stops when the last connection has received its last message,
so connection set-up is part of the cost, as it is for a user. ``--messages`` is the total
per run, split evenly over the connections.

    .venv/bin/python bench/ws_throughput.py --messages 50000 --reps 5 \\
        --connections 1,100 --payload trade,book --compress off,on
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from _common import ArgumentParser, positive_int

SERVER_START_TIMEOUT = 20.0  # seconds to wait for the server subprocess to print its URL
RUN_TIMEOUT = 120.0  # seconds: one run that takes longer is reported as a failure

Runner = Callable[[str, int, int, bool], Awaitable[tuple[float, float]]]
"""(url, connections, messages per connection, compress) -> (seconds in all, seconds to
connect all)."""


def _int_list(text: str) -> list[int]:
    values = [positive_int(part) for part in text.split(",") if part.strip()]
    if not values or max(values) > 1000:
        raise argparse.ArgumentTypeError(f"give connection counts within 1..1000, not {text!r}")
    return values


def _compress_list(text: str) -> list[bool]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(v not in ("off", "on") for v in values):
        raise argparse.ArgumentTypeError(f"compress is off and/or on, not {text!r}")
    return [v == "on" for v in values]


def _payload_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(v not in ("trade", "book") for v in values):
        raise argparse.ArgumentTypeError(f"payloads are trade and/or book, not {text!r}")
    return values


# -- the two variants ------------------------------------------------------------------------


async def run_raw(
    session: aiohttp.ClientSession, url: str, connections: int, per_conn: int, compress: bool
) -> tuple[float, float]:
    """(a): seconds from the first connect to the last message received, and to the last
    connection open."""
    decode = msgspec.json.decode
    connected: list[float] = []

    async def one() -> float:
        async with session.ws_connect(url, compress=15 if compress else 0) as ws:
            connected.append(time.perf_counter())
            received = 0
            while received < per_conn:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    decode(msg.data)
                    received += 1
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    raise RuntimeError(f"stream ended after {received} of {per_conn} messages")
            return time.perf_counter()

    start = time.perf_counter()
    ends = await asyncio.gather(*(one() for _ in range(connections)))
    return max(ends) - start, max(connected) - start


def make_library_runner() -> Runner:
    """(b), imported lazily so that (a) runs on a checkout whose library is incomplete."""
    from networkpype.factory import ConnectionManagersFactory
    from networkpype.throttler.rate_limit import RateLimit
    from networkpype.throttler.throttler import AsyncThrottler

    async def run_library(
        url: str, connections: int, per_conn: int, compress: bool
    ) -> tuple[float, float]:
        # Generous limits: this measures the receive path, not the pacing of sends.
        throttler = AsyncThrottler(
            rate_limits=[RateLimit(limit_id="default", limit=1_000_000, time_interval=1.0)]
        )
        factory = ConnectionManagersFactory(throttler=throttler)
        connected: list[float] = []

        async def one() -> float:
            ws_manager = await factory.get_ws_manager()
            await ws_manager.connect(url, compress=compress)
            connected.append(time.perf_counter())
            received = 0
            last: Any = None
            async for message in ws_manager.iter_messages():
                if message:
                    last = message.data
                    received += 1
                    if received >= per_conn:
                        break
            end = time.perf_counter()
            if received < per_conn:
                raise RuntimeError(f"stream ended after {received} of {per_conn} messages")
            if not isinstance(last, dict):
                raise RuntimeError(f"expected decoded dicts, got {type(last).__name__}")
            await ws_manager.disconnect()
            return end

        start = time.perf_counter()
        try:
            ends = await asyncio.gather(*(one() for _ in range(connections)))
        finally:
            await factory.close()
        return max(ends) - start, max(connected) - start

    return run_library


# -- the server ------------------------------------------------------------------------------


@contextlib.contextmanager
def demo_server_process(lifetime: float) -> Any:
    """Run ``python -m networkpype.demo.server --port 0`` and yield its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "networkpype.demo.server",
            "--port",
            "0",
            "--duration",
            f"{lifetime:.0f}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "demo server listening on ws://127.0.0.1:PORT/ws"
        if "listening on " not in line:
            raise RuntimeError(f"the demo server did not start: {line!r}")
        url = line.rsplit(" ", 1)[-1].strip()
        yield url.removesuffix("/ws"), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the driver ------------------------------------------------------------------------------


@dataclass
class Case:
    payload: str
    connections: int
    per_conn: int
    raw: list[float]  # seconds per run
    lib: list[float]
    raw_setup: list[float]  # seconds until every connection was open
    lib_setup: list[float]
    compress: bool = False
    lib_error: str | None = None

    @property
    def total(self) -> int:
        return self.connections * self.per_conn


def _rate(total: int, seconds: list[float]) -> float | None:
    return total / statistics.median(seconds) if seconds else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.0f}" if seconds else "n/a"


def print_table(cases: list[Case], reps: int) -> None:
    header = (
        f"{'payload':<8} {'conns':>5} {'msgs/conn':>9} {'(a) raw msg/s':>14} "
        f"{'(b) networkpype msg/s':>22} {'b/a':>6}   {'setup ms a/b':>13} {'deflate':>8}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        a, b = _rate(case.total, case.raw), _rate(case.total, case.lib)
        ratio = f"{b / a:.2f}" if a and b else "n/a"
        setup = f"{_ms(case.raw_setup)}/{_ms(case.lib_setup)}"
        print(
            f"{case.payload:<8} {case.connections:>5} {case.per_conn:>9} {_fmt(a):>14} "
            f"{_fmt(b):>22} {ratio:>6}   {setup:>13} {'on' if case.compress else 'off':>8}"
        )
    print(
        f"(medians of {reps} interleaved repetitions a, b, a, b, ...; msg/s counts the time "
        "from the first connect to the last message; setup = time until every connection "
        "was open; b/a > 1 means networkpype is faster)"
    )
    print_wire_bytes(sorted({case.payload for case in cases if case.compress}))
    for case in cases:
        if case.lib_error:
            print(f"note: (b) {case.payload} x{case.connections}: {case.lib_error}")


def print_wire_bytes(payloads: list[str]) -> None:
    """Bytes per message: the payload, what the benchmark server sends compressed (each
    template deflated on its own), and what a server deflating every message with context
    takeover at zlib's default level sends (most venues; the bytes saved on a real link)."""
    from networkpype.demo._bench_stream import deflate_templates, stream_templates

    for payload in payloads:
        templates = stream_templates("trade" if payload == "trade" else "book")
        bodies = [b"%b%d}" % (templates[seq % len(templates)], seq) for seq in range(1, 5001)]
        plain = statistics.mean(map(len, bodies))
        own = statistics.mean(len(t) + 9 for t in deflate_templates(templates))  # + seq block
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        takeover = statistics.mean(
            len(compressor.compress(b) + compressor.flush(zlib.Z_SYNC_FLUSH)) - 4 for b in bodies
        )
        print(
            f"wire bytes per {payload} message: {plain:.0f} plain, {own:.0f} as the benchmark "
            f"server deflates, {takeover:.0f} deflated with context takeover "
            f"({plain / takeover:.1f}x smaller)"
        )


async def bench(args: argparse.Namespace, base_url: str) -> list[Case]:
    try:
        run_library: Runner | None = make_library_runner()
        import_error = None
    except ImportError as exc:
        run_library, import_error = None, f"networkpype's manager is not importable: {exc}"
    connector = aiohttp.TCPConnector(limit=max(args.connections) + 10)
    cases: list[Case] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def raw(
            url: str, connections: int, per_conn: int, compress: bool
        ) -> tuple[float, float]:
            return await run_raw(session, url, connections, per_conn, compress)

        for payload, connections, compress in [
            (p, c, z) for p in args.payload for c in args.connections for z in args.compress
        ]:
            per_conn = max(1, args.messages // connections)
            url = f"{base_url}/stream?kind={payload}&count={per_conn}"
            case = Case(payload, connections, per_conn, [], [], [], [], compress, import_error)
            warm = min(per_conn, 100)  # server templates, code paths, caches
            await raw(f"{base_url}/stream?kind={payload}&count={warm}", 1, warm, compress)
            for _ in range(args.reps):
                gc.collect()
                async with asyncio.timeout(RUN_TIMEOUT):
                    total, setup = await raw(url, connections, per_conn, compress)
                case.raw.append(total)
                case.raw_setup.append(setup)
                if run_library is None or case.lib_error:
                    continue
                gc.collect()
                try:
                    async with asyncio.timeout(RUN_TIMEOUT):
                        total, setup = await run_library(url, connections, per_conn, compress)
                except Exception as exc:
                    case.lib_error = f"{type(exc).__name__}: {exc}"
                    case.lib.clear()
                    case.lib_setup.clear()
                    continue
                case.lib.append(total)
                case.lib_setup.append(setup)
            print(
                f"  done: {payload} x{connections} deflate {'on' if compress else 'off'} "
                f"(a) {_fmt(_rate(case.total, case.raw))} msg/s, "
                f"(b) {_fmt(_rate(case.total, case.lib))} msg/s",
                file=sys.stderr,
                flush=True,
            )
            cases.append(case)
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="ws_throughput",
        description="Messages per second: raw aiohttp+msgspec (a) vs networkpype (b).",
    )
    parser.add_argument(
        "--messages",
        type=positive_int,
        default=50_000,
        help="messages per run, split over the connections (default 50000)",
    )
    parser.add_argument(
        "--reps", type=positive_int, default=5, help="interleaved repetitions (default 5)"
    )
    parser.add_argument(
        "--connections",
        type=_int_list,
        default=[1, 100],
        help="comma-separated connection counts (default 1,100)",
    )
    parser.add_argument(
        "--payload",
        type=_payload_list,
        default=["trade", "book"],
        help="trade (~150 B) and/or book (~1.1 KB) (default trade,book)",
    )
    parser.add_argument(
        "--compress",
        type=_compress_list,
        default=[False, True],
        help="permessage-deflate off and/or on, for both variants (default off,on)",
    )
    args = parser.parse_args(argv)
    print(
        f"ws_throughput: {args.messages} messages per run, {args.reps} reps, "
        f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"msgspec {msgspec.__version__}, {os.cpu_count()} CPUs",
        flush=True,
    )
    started = time.perf_counter()
    with demo_server_process(lifetime=3600) as (base_url, pid):
        print(f"server: pid {pid}, {base_url}/stream", flush=True)
        cases = asyncio.run(bench(args, base_url))
    print()
    print_table(cases, args.reps)
    print(f"total time {time.perf_counter() - started:.1f} s")
    failed = [c for c in cases if c.lib_error and not c.lib_error.startswith("networkpype's")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
