"""Receive throughput against a raw aiohttp loop, measured as issue 15 says: a server that
streams pre-framed bytes, client and server pinned to separate CPUs, variants interleaved.

    .venv/bin/python bench/receive.py            # the figures (about 4 minutes)
    .venv/bin/python bench/receive.py --quick    # a smoke run (tests/test_bench_receive.py)

The server runs in its own process (this file with ``--serve``), pinned to the last CPU; the
client to the first (``os.sched_setaffinity``; without two CPUs nothing is pinned and the
output says so). The server answers the WebSocket handshake itself, waits for the client's
first frame ("go": sent once every connection of a run is open and reading, so connection
set-up is not timed) and writes the whole stream, pre-built frames, to the socket in one
``transport.write``: it costs almost nothing, and the client is what is measured.

A run times one variant from the first "go" to the last message received (monotonic
clock). Each case runs its variants in turn, ``--reps`` times (a, b, c, a, b, c, ...), and
prints the median messages per second of each beside the raw loop's of the same run:

* raw: aiohttp ``ws.receive()`` + ``msgspec.json.decode(msg.data)`` per message;
* raw+Struct: the same with a ``msgspec.json.Decoder(Trade)``, the typed baseline;
* iter_messages: ``WebSocketManager.iter_messages()``, default decoder (dicts);
* typed: ``iter_messages()`` with ``decoder=Trade`` (ratio against raw+Struct);
* iter_batches: ``WebSocketManager.iter_batches()`` (lists of dicts);
* fallback: ``iter_messages()`` with ``WebSocketConnection.fast_path_allowed = False``
  (aiohttp's public ``receive()`` only);
* unchecked (depth only): ``iter_messages()`` with a JSON decoder that skips the nesting
  check (``MAX_JSON_DEPTH``), compared with ``iter_messages()``: what the check costs.

Cases: trade (~155 B) and depth (~1.1 KB) messages on 1 connection, trade on 100
connections. Every run is bounded: ``--messages`` per run, ``RUN_TIMEOUT`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import msgspec
from _common import ArgumentParser, _text_frame, positive_int, server_process
from decode import Trade as DemoTrade

RUN_TIMEOUT = 120.0  # seconds: a run that takes longer fails the benchmark
SERVER_START_TIMEOUT = 20.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class Trade(DemoTrade):
    """The typed variants' message: the demo market's trade event as the server sends it."""

    stream: str
    seq: int


# -- the server -------------------------------------------------------------------------------


def _stream_bytes(kind: str, count: int, cache: dict[tuple[str, int], bytes]) -> bytes:
    """``count`` pre-framed messages of ``kind`` (``seq`` 1..count), built once."""
    key = (kind, count)
    if key not in cache:
        from networkpype.demo._bench_stream import stream_templates

        templates = stream_templates("trade" if kind == "trade" else "book")
        cache[key] = b"".join(
            _text_frame(b"%b%d}" % (templates[seq % len(templates)], seq))
            for seq in range(1, count + 1)
        )
    return cache[key]


class _StreamProtocol(asyncio.Protocol):
    """Handshake, then (at the client's first frame) the whole stream in one write; a
    close frame from the client is answered and the connection closed."""

    def __init__(self, cache: dict[tuple[str, int], bytes]) -> None:
        self.cache = cache
        self.head = b""
        self.state = "handshake"
        self.stream = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if self.state == "handshake":
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            lines = self.head.split(b"\r\n")
            target = lines[0].split(b" ")[1].decode()
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)
            }
            query = parse_qs(urlsplit(target).query)
            kind, count = query.get("kind", ["trade"])[0], int(query.get("count", ["0"])[0])
            accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + _GUID).digest())
            transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.stream = _stream_bytes(kind, count, self.cache)
            self.state = "wait"
        elif self.state == "wait":  # the client's "go"
            self.state = "streaming"
            transport.write(self.stream)
        elif data[0] & 0x0F == 0x8:  # the client's close frame
            transport.write(b"\x88\x02\x03\xe8")
            transport.close()


async def serve(duration: float) -> None:
    cache: dict[tuple[str, int], bytes] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _StreamProtocol(cache), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"receive server listening on ws://127.0.0.1:{port}/stream", flush=True)
    async with server:
        await asyncio.sleep(duration)


# -- the variants -------------------------------------------------------------------------------

Run = Callable[[str, int, int], Awaitable[float]]
"""(url, connections, messages per connection) -> seconds from the first "go" to the last
message."""


async def _timed(
    opened: Sequence[Any],
    go: Callable[[Any], Awaitable[None]],
    read: Callable[[Any], Coroutine[Any, Any, None]],
) -> float:
    readers = [asyncio.create_task(read(conn)) for conn in opened]
    await asyncio.sleep(0)  # every reader is waiting
    start = time.monotonic()
    await asyncio.gather(*(go(conn) for conn in opened))
    await asyncio.gather(*readers)
    return time.monotonic() - start


def raw_runner(session: aiohttp.ClientSession, decode: Callable[[bytes], Any]) -> Run:
    async def run(url: str, connections: int, per_conn: int) -> float:
        async with contextlib.AsyncExitStack() as stack:
            opened = [
                await stack.enter_async_context(session.ws_connect(url, autoping=False))
                for _ in range(connections)
            ]

            async def go(ws: aiohttp.ClientWebSocketResponse) -> None:
                await ws.send_str("go")

            async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
                received = 0
                while received < per_conn:
                    msg = await ws.receive()
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        decode(msg.data)
                        received += 1
                    elif msg.type is not aiohttp.WSMsgType.BINARY:
                        raise RuntimeError(f"stream ended after {received} of {per_conn}")

            return await _timed(opened, go, read)

    return run


def library_runner(
    session: aiohttp.ClientSession, how: str, decoder: Any = None, fast: bool = True
) -> Run:
    """``how``: "messages" (iter_messages) or "batches" (iter_batches)."""
    from networkpype.websocket.connection import WebSocketConnection
    from networkpype.websocket.manager import WebSocketManager
    from networkpype.websocket.request import WebSocketJSONRequest

    async def run(url: str, connections: int, per_conn: int) -> float:
        before = WebSocketConnection.fast_path_allowed
        WebSocketConnection.fast_path_allowed = fast  # read at connect()
        try:
            opened = []
            for _ in range(connections):
                manager = WebSocketManager(WebSocketConnection(session, decoder=decoder))
                await manager.connect(url)
                opened.append(manager)
        finally:
            WebSocketConnection.fast_path_allowed = before

        async def go(manager: WebSocketManager) -> None:
            await manager.send(WebSocketJSONRequest(payload="go"))

        async def read_messages(manager: WebSocketManager) -> None:
            received = 0
            async for _message in manager.iter_messages():
                received += 1
                if received >= per_conn:
                    return
            raise RuntimeError(f"stream ended after {received} of {per_conn}")

        async def read_batches(manager: WebSocketManager) -> None:
            received = 0
            async for batch in manager.iter_batches():
                received += len(batch)
                if received >= per_conn:
                    return
            raise RuntimeError(f"stream ended after {received} of {per_conn}")

        try:
            return await _timed(opened, go, read_batches if how == "batches" else read_messages)
        finally:
            await asyncio.gather(*(manager.disconnect() for manager in opened))

    return run


def unchecked_decoder() -> Any:
    """The default JSON decoder without its nesting check: msgspec for every payload."""
    from networkpype.wire.decoding import JSONOrTextDecoder

    class Unchecked(JSONOrTextDecoder):
        __slots__ = ()
        fast_path_below = sys.maxsize  # the base has it as a property: never checked

    return Unchecked()


# -- the driver -------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    kind: str
    connections: int
    per_conn: int
    variants: dict[str, list[float]] = field(default_factory=dict)  # seconds per run

    def rate(self, variant: str) -> float:
        return self.connections * self.per_conn / statistics.median(self.variants[variant])

    def paired(self, variant: str, base: str) -> float:
        """The median over repetitions of each one's ratio (its baseline's run of the same
        repetition, taken moments apart): steadier than the ratio of medians when the
        machine's speed drifts during the case."""
        pairs = zip(self.variants[base], self.variants[variant], strict=True)
        return statistics.median(b / v for b, v in pairs)

    def spread(self, variant: str) -> float:
        """How far the variant's own runs moved: (slowest - fastest) / median, in %."""
        runs = self.variants[variant]
        return 100 * (max(runs) - min(runs)) / statistics.median(runs)


BASELINE = {"typed": "raw+Struct", "unchecked": "iter_messages"}  # the others: "raw"


CASES = ("trade", "depth", "fanin")


def _case_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or any(v not in CASES for v in values):
        raise argparse.ArgumentTypeError(f"cases are {', '.join(CASES)}, not {text!r}")
    return values


def cases(args: argparse.Namespace) -> list[tuple[Case, list[str]]]:
    one = ["raw", "iter_messages", "iter_batches", "fallback"]
    trade = max(1, args.messages)
    depth = max(1, args.messages // 4)  # ~8x the bytes: a run of about the same length
    fanin = max(1, args.messages // args.connections)
    every = {
        "trade": (Case("trade", "trade", 1, trade), ["raw", "raw+Struct", *one[1:], "typed"]),
        "depth": (Case("depth", "depth", 1, depth), [*one, "unchecked"]),
        "fanin": (Case(f"trade x{args.connections}", "trade", args.connections, fanin), one),
    }
    return [every[name] for name in args.cases]


async def bench(args: argparse.Namespace, base_url: str) -> list[Case]:
    connector = aiohttp.TCPConnector(limit=args.connections + 10)
    done: list[Case] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        runners: dict[str, Run] = {
            "raw": raw_runner(session, msgspec.json.Decoder().decode),
            "raw+Struct": raw_runner(session, msgspec.json.Decoder(Trade).decode),
            "iter_messages": library_runner(session, "messages"),
            "typed": library_runner(session, "messages", decoder=Trade),
            "iter_batches": library_runner(session, "batches"),
            "fallback": library_runner(session, "messages", fast=False),
            "unchecked": library_runner(session, "messages", decoder=unchecked_decoder()),
        }
        for case, names in cases(args):
            url = f"{base_url}?kind={case.kind}&count={case.per_conn}"
            for name in names:  # warm-up: the server builds its stream, code paths load
                await runners[name](url, 1, min(case.per_conn, 1000))
            for _ in range(args.reps):
                for name in names:
                    gc.collect()
                    async with asyncio.timeout(RUN_TIMEOUT):
                        seconds = await runners[name](url, case.connections, case.per_conn)
                    case.variants.setdefault(name, []).append(seconds)
            print(f"  done: {case.name}", file=sys.stderr, flush=True)
            done.append(case)
    return done


def print_table(done: list[Case], reps: int) -> None:
    header = (
        f"{'case':<12} {'variant':<22} {'msg/s':>12} {'baseline msg/s':>15} {'ratio':>6} "
        f"{'paired':>6} {'spread':>7}"
    )
    print(header)
    print("-" * len(header))
    for case in done:
        for name in case.variants:
            base = BASELINE.get(name, "raw")
            rate, base_rate = case.rate(name), case.rate(base)
            label = f"{name}" if name in ("raw", "raw+Struct") else f"{name} / {base}"
            print(
                f"{case.name:<12} {label:<22} {rate:>12,.0f} {base_rate:>15,.0f} "
                f"{rate / base_rate:>6.2f} {case.paired(name, base):>6.2f} "
                f"{case.spread(name):>6.0f}%"
            )
    print(
        f"(medians of {reps} interleaved runs; msg/s from the first 'go' to the last message; "
        "ratio > 1: faster than the raw aiohttp + msgspec loop of the same run; paired: the "
        "median of each repetition's own ratio; spread: how far the variant's runs moved, "
        "(slowest - fastest) / median: a spread of tens of % means other work shared the CPUs)"
    )


def pin(cpu: int) -> str:
    """Pin this process to ``cpu``; what was done, for the header."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return "not pinned (fewer than 2 CPUs)"
    os.sched_setaffinity(0, {cpu})
    return f"cpu {cpu}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="receive", description="Receive throughput against a raw aiohttp loop."
    )
    parser.add_argument(
        "--messages",
        type=positive_int,
        default=600_000,
        help="trade messages per run (depth: a quarter) (default 600000: about a second per "
        "run; shorter runs let the machine's drift decide)",
    )
    parser.add_argument(
        "--reps", type=positive_int, default=5, help="interleaved runs per variant (default 5)"
    )
    parser.add_argument(
        "--connections",
        type=positive_int,
        default=100,
        help="connections of the fan-in case (default 100)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2,000 messages, 1 rep, 4 connections"
    )
    parser.add_argument(
        "--cases",
        type=_case_list,
        default=list(CASES),
        help="comma-separated cases: trade, depth, fanin (default: all three)",
    )
    parser.add_argument("--serve", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        pin(max(os.sched_getaffinity(0)))
        asyncio.run(serve(args.serve))
        return 0
    if args.quick:
        args.messages, args.reps, args.connections = 2000, 1, 4
    if args.connections > 1000:
        parser.error("--connections: at most 1000")
    started = time.monotonic()
    command = [sys.executable, os.path.abspath(__file__), "--serve", "3600"]
    # The server pins itself to the last CPU; this process then takes the first.
    with server_process(command, SERVER_START_TIMEOUT) as (url, pid):
        pinned = pin(min(os.sched_getaffinity(0)))
        print(
            f"receive: {args.messages} trade messages per run, {args.reps} reps, python "
            f"{sys.version.split()[0]}, aiohttp {aiohttp.__version__}, msgspec "
            f"{msgspec.__version__}; client {pinned}, server pid {pid} cpu "
            f"{sorted(os.sched_getaffinity(pid))}",
            flush=True,
        )
        done = asyncio.run(bench(args, url))
    print()
    print_table(done, args.reps)
    print(f"total time {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
