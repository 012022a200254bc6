"""Helpers shared by the scripts in ``bench/``: argument types, a server subprocess, a
barrier stream server, medians, memory readings and where memory went, table cells.

A script in ``bench/`` imports it as ``import _common`` (Python puts the script's directory
first on ``sys.path``). Only the barrier server imports networkpype (its synthetic market
data, lazily), so a baseline still runs on a checkout whose library is broken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import select
import statistics
import struct
import subprocess
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import msgspec

__all__ = [
    "AllocationProfile",
    "ArgumentParser",
    "fmt_bytes",
    "fmt_rate",
    "median",
    "positive_int",
    "rss_bytes",
    "serve_barrier_streams",
    "server_process",
    "traced_bytes",
]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BARRIER_TIMEOUT = 60.0  # seconds a group waits for its last connection before giving up
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad argument on one line instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


@contextlib.contextmanager
def server_process(argv: Sequence[str], start_timeout: float) -> Iterator[tuple[str, int]]:
    """Run ``argv`` and yield ``(url, pid)`` once it printed ``... listening on URL``.

    The process is terminated (killed after 10 s) on exit. Raises ``RuntimeError`` when it
    prints something else first, exits, or says nothing within ``start_timeout`` seconds.
    """
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
        line = proc.stdout.readline() if ready else ""
        if "listening on " not in line:
            raise RuntimeError(f"the server {argv[-1]!r} did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip(), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_child(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run a measuring child process; its last line of output is a JSON object, returned.
    ``RuntimeError`` (with its last line of stderr) when it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{argv[3]} exited with {proc.returncode}: {tail}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- the barrier stream server ------------------------------------------------------------------


def _text_frame(body: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 section 5.2)."""
    n = len(body)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + body
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + body
    return struct.pack("!BBQ", 0x81, 127, n) + body


@dataclass
class _Group:
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    joined: int = 0


async def serve_barrier_streams(duration: float) -> None:
    """Serve ``ws://127.0.0.1:PORT/fanin`` for ``duration`` seconds; print
    ``barrier server listening on URL`` once bound (see ``server_process``).

    ``/fanin?group=G&size=C&count=N``: every text frame with an ``id`` is acknowledged
    ``{"result": null, "id": n}``. Once ``C`` connections of group ``G`` have sent one, each
    gets ``N`` pre-encoded trade events of the demo market (~150 B, as fast as it reads them,
    64 frames a write, like the demo server's ``/stream``), then stays open and quiet until
    the client closes. So every connection of a run starts streaming at the same moment,
    however long the client took to open them, and nothing closes under a supervisor that
    would reconnect. A group that does not fill within 60 s streams nothing.
    """
    from aiohttp import WSMsgType, web

    from networkpype.demo.market import SyntheticMarket

    market = SyntheticMarket("BENCHUSDT")
    templates = []
    for _ in range(256):
        event = market.trade()
        event["stream"] = "benchusdt@trade"
        templates.append(_encode(event)[:-1] + b',"seq":')
    groups: dict[str, _Group] = {}

    async def stream(group: _Group, transport: asyncio.WriteTransport, count: int) -> None:
        await asyncio.wait_for(group.ready.wait(), _BARRIER_TIMEOUT)
        for start in range(1, count + 1, 64):
            frames = [
                _text_frame(b"%b%d}" % (templates[seq % len(templates)], seq))
                for seq in range(start, min(start + 64, count + 1))
            ]
            if transport.is_closing():
                return
            transport.write(b"".join(frames))
            await asyncio.sleep(0)
            # A transport has no drain event of its own (aiohttp owns the protocol): poll.
            while transport.get_write_buffer_size() > 1 << 20:
                if transport.is_closing():
                    return
                await asyncio.sleep(0.0005)

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            group_id = request.query["group"]
            size, count = int(request.query["size"]), int(request.query["count"])
        except (KeyError, ValueError):
            raise web.HTTPBadRequest(text="need group, size and count\n") from None
        if not (1 <= size <= 1000 and 0 <= count <= 10_000_000):
            raise web.HTTPBadRequest(text="size within 1..1000, count within 0..10^7\n")
        ws = web.WebSocketResponse(compress=False, timeout=2.0)
        await ws.prepare(request)
        transport = request.transport
        assert isinstance(transport, asyncio.WriteTransport)
        group = groups.setdefault(group_id, _Group())
        writer: asyncio.Task[None] | None = None
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT or transport.is_closing():
                    continue
                with contextlib.suppress(msgspec.DecodeError):
                    command = _decode(msg.data)
                    if not isinstance(command, dict) or "id" not in command:
                        continue
                    # Frames go to the transport directly, the acknowledgement too, so that
                    # they never interleave with aiohttp's writer.
                    transport.write(_text_frame(_encode({"result": None, "id": command["id"]})))
                    if writer is None:  # subscribed: this connection joins its group
                        writer = asyncio.create_task(stream(group, transport, count))
                        group.joined += 1
                        if group.joined >= size:  # a late reconnection makes a new group
                            group.ready.set()
                            groups.pop(group_id, None)
        finally:
            if writer is not None:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
        return ws

    app = web.Application()
    app.router.add_get("/fanin", handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])  # the port bound
    print(f"barrier server listening on ws://127.0.0.1:{port}/fanin", flush=True)
    try:
        await asyncio.sleep(duration)
    finally:
        await runner.cleanup()


# -- measurements -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def rss_bytes() -> int:
    """Resident set size of this process (``/proc/self/statm``) after a full collection,
    in bytes."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


def traced_bytes() -> int:
    """Bytes currently allocated under ``tracemalloc`` after a full collection (0 when it is
    not tracing)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


class AllocationProfile:
    """Where traced memory grew from construction to ``top()``: each allocation is charged to
    the innermost frame of networkpype or pykka on its stack (else to its own file: aiohttp's,
    asyncio's). Disabled (``top()`` returns ``[]``) unless ``enabled``; start ``tracemalloc``
    with enough frames (16) for the stacks to reach networkpype."""

    def __init__(self, enabled: bool) -> None:
        self.old = tracemalloc.take_snapshot() if enabled else None

    def top(self, units: int, limit: int = 14, *, by_line: bool = False) -> list[str]:
        """Lines of bytes per unit and owner, largest first, then the rest and the total;
        ``by_line``: owners are ``file:line``, not files."""
        if self.old is None:
            return []
        new = tracemalloc.take_snapshot()
        owners: dict[str, int] = {}
        for stat in new.compare_to(self.old, "traceback"):
            owner = _owner(stat.traceback, by_line)
            owners[owner] = owners.get(owner, 0) + stat.size_diff
        ranked = sorted(owners.items(), key=lambda item: -item[1])
        lines = [f"{size / units:>9,.0f} B  {owner}" for owner, size in ranked[:limit]]
        rest = sum(size for _, size in ranked[limit:])
        lines.append(f"{rest / units:>9,.0f} B  (everything else)")
        lines.append(f"{sum(owners.values()) / units:>9,.0f} B  total")
        return lines


def _where(filename: str) -> str:
    if "site-packages" in filename:
        return filename.split("site-packages/")[-1]
    if filename.startswith(_ROOT):
        return os.path.relpath(filename, _ROOT)
    return f"stdlib/{os.path.basename(filename)}"


def _owner(traceback: tracemalloc.Traceback, by_line: bool = False) -> str:
    owner = traceback[-1]
    for frame in reversed(traceback):  # tracemalloc lists the oldest frame first
        if _where(frame.filename).startswith(("networkpype/", "pykka/")):
            owner = frame
            break
    where = _where(owner.filename)
    return f"{where}:{owner.lineno}" if by_line else where


def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_bytes(value: float | None) -> str:
    """``512 B``, ``12.3 KiB``, ``4.50 MiB``."""
    if value is None:
        return "n/a"
    size = abs(value)
    if size < 1024:
        return f"{value:,.0f} B"
    if size < 1024 * 1024:
        return f"{value / 1024:,.1f} KiB"
    return f"{value / (1024 * 1024):,.2f} MiB"
