"""Messages lost by consumers that stop early, with default settings (issue 9, defect 1).

    .venv/bin/python bench/consumer_loss.py [--messages 16000] [--deadline 60]

A loopback aiohttp server numbers its messages (``{"n": k}``, sent in bursts so the client's
queue holds many at once); a plain ``WebSocketManager`` with the defaults reads them in the
ways a bot stops reading early:

- ``processor raises``: a post-processor raises on 32 messages spread over the stream; the
  consumer catches the error and calls ``iter_messages()`` again;
- ``break + resume``: the consumer breaks out of ``iter_messages()`` every 1,000 messages and
  starts a new one;
- ``task restarts``: the bot cancels and restarts its consumer task every ~1,000 messages;
- ``receive()``: a post-processor raising, one message at a time;
- ``SyncNetworkPype.get()``: the blocking facade (defaults) with the same raising
  post-processor, read from a thread (issue 9, defect 3: each error raised once, in its
  place, then the following messages).

The consumer starts once the queue holds a full backlog (a bot that fell behind).

For each it prints messages delivered, errors raised and messages lost without anybody being
told (the numbers that never reached the consumer, minus those whose processor raised). The
target is 0 lost everywhere. Exits non-zero if anything was lost or the deadline passed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

import _common
import aiohttp
from aiohttp import web

from networkpype.embedding import SyncNetworkPype
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import DEFAULT_MAX_QUEUE, WebSocketManager
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.response import WebSocketResponse

BURST = 500  # messages per burst: the client's queue holds many at once


class Boom(Exception):
    pass


class RaiseOn(WebSocketPostProcessor):
    def __init__(self, numbers: set[int]) -> None:
        self.numbers = numbers

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if response.data["n"] in self.numbers:
            raise Boom(response.data["n"])
        return response


async def serve(total: int) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for n in range(1, total + 1):
            await ws.send_str(json.dumps({"n": n}))
            if n % BURST == 0:
                await asyncio.sleep(0.001)
        async for _ in ws:  # hold the connection open until the client leaves
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


Pattern = Callable[[WebSocketManager, int, list[int], list[int]], Awaitable[None]]


async def processor_raises(
    ws: WebSocketManager, total: int, got: list[int], errors: list[int]
) -> None:
    while (got[-1] if got else 0) < total and (not errors or errors[-1] != total):
        try:
            async for message in ws.iter_messages():
                got.append(message.data["n"])
                if message.data["n"] == total:
                    return
        except Boom as exc:
            errors.append(exc.args[0])


async def break_and_resume(ws: WebSocketManager, total: int, got: list[int], _e: list[int]) -> None:
    while not got or got[-1] < total:
        async for message in ws.iter_messages():
            got.append(message.data["n"])
            if len(got) % 1000 == 0 or message.data["n"] == total:
                break


async def task_restarts(ws: WebSocketManager, total: int, got: list[int], _e: list[int]) -> None:
    thousand = asyncio.Event()

    async def consumer() -> None:
        async for message in ws.iter_messages():
            got.append(message.data["n"])
            if len(got) % 1000 == 0 or message.data["n"] == total:
                thousand.set()
            if len(got) % 100 == 0:
                await asyncio.sleep(0)  # a bot's own await, where a cancel may land

    while not got or got[-1] < total:
        thousand.clear()
        task = asyncio.create_task(consumer())
        await thousand.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def receive_each(ws: WebSocketManager, total: int, got: list[int], errors: list[int]) -> None:
    while (got[-1] if got else 0) < total and (not errors or errors[-1] != total):
        try:
            message = await ws.receive()
        except Boom as exc:
            errors.append(exc.args[0])
            continue
        assert message is not None
        got.append(message.data["n"])


async def run(name: str, pattern: Pattern, url: str, total: int, raising: set[int]) -> bool:
    async with aiohttp.ClientSession() as session:
        processors: list[WebSocketPostProcessor] = [RaiseOn(raising)] if raising else []
        ws = WebSocketManager(WebSocketConnection(session), ws_post_processors=processors)
        await ws.connect(url)  # every setting at its default
        # The consumer starts behind, as a busy bot's does: the queue holds a full backlog.
        backlog = min(total, DEFAULT_MAX_QUEUE)
        async with asyncio.timeout(10):
            while ws.connection.messages_in < backlog:  # noqa: ASYNC110  # a counter, no event
                await asyncio.sleep(0.01)
        got: list[int] = []
        errors: list[int] = []
        started = time.monotonic()
        await pattern(ws, total, got, errors)
        elapsed = time.monotonic() - started
        await ws.disconnect()
    return report(name, total, got, errors, elapsed)


def sync_processor_raises(
    url: str, total: int, raising: set[int]
) -> tuple[list[int], list[int], float]:
    """``SyncNetworkPype`` with defaults, read with ``get()`` on this (non-loop) thread:
    (numbers delivered, numbers whose processor raised, seconds)."""
    got: list[int] = []
    errors: list[int] = []
    with SyncNetworkPype(ws_post_processors=[RaiseOn(raising)]) as pype:
        pype.connect(url)
        backlog, until = min(total, DEFAULT_MAX_QUEUE), time.monotonic() + 10
        while pype.statistics().messages_in < backlog and time.monotonic() < until:
            time.sleep(0.01)
        started = time.monotonic()
        while (got[-1] if got else 0) < total and (not errors or errors[-1] != total):
            try:
                message = pype.get(timeout=10)
            except Boom as exc:
                errors.append(exc.args[0])
                continue
            if message is None:
                break
            got.append(message.data["n"])
        elapsed = time.monotonic() - started
    return got, errors, elapsed


def report(name: str, total: int, got: list[int], errors: list[int], elapsed: float) -> bool:
    missing = set(range(1, total + 1)) - set(got) - set(errors)
    duplicates = len(got) - len(set(got))
    in_order = got == sorted(got)
    ok = not missing and not duplicates and in_order
    print(
        f"{name:<32} {len(got):>9,} {len(errors):>7} {len(missing):>6} {duplicates:>6} "
        f"{'yes' if in_order else 'NO':>6} {elapsed:>7.2f}"
    )
    return ok


async def main_async(total: int, deadline: float) -> int:
    runner, port = await serve(total)
    url = f"ws://127.0.0.1:{port}/ws"
    step = total // 32
    raising = {k * step + 7 for k in range(32)}
    print(f"{total:,} numbered messages per run, default settings (max_queue=10,000, 'block')")
    print(
        f"{'pattern':<32} {'delivered':>9} {'errors':>7} {'lost':>6} {'dupes':>6} "
        f"{'order':>6} {'s':>7}"
    )
    runs: list[tuple[str, Pattern, set[int]]] = [
        ("iter_messages: processor raises", processor_raises, raising),
        ("iter_messages: break + resume", break_and_resume, set()),
        ("iter_messages: task restarts", task_restarts, set()),
        ("receive(): processor raises", receive_each, raising),
    ]
    ok = True
    try:
        async with asyncio.timeout(deadline):
            for name, pattern, raise_on in runs:
                ok = await run(name, pattern, url, total, raise_on) and ok
            got, errors, elapsed = await asyncio.to_thread(
                sync_processor_raises, url, total, raising
            )
            ok = report("SyncNetworkPype.get(): raises", total, got, errors, elapsed) and ok
    except TimeoutError:
        print(f"deadline of {deadline:g} s passed: the run is incomplete", file=sys.stderr)
        return 2
    finally:
        await runner.cleanup()
    print("lost = numbers the consumer never saw, minus those whose post-processor raised (0)")
    return 0 if ok else 1


def main() -> None:
    parser = _common.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=_common.positive_int, default=16_000)
    parser.add_argument("--deadline", type=float, default=60.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(main_async(args.messages, args.deadline)))


if __name__ == "__main__":
    main()
