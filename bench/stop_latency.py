"""How long ``WebSocketManager.disconnect()`` takes from each state, with default settings.

    .venv/bin/python bench/stop_latency.py [--runs 5]

Each state is set up against loopback servers, then ``disconnect()`` is timed; the median
and the largest of ``--runs`` runs are printed per state, in milliseconds (issue 9: under
100 ms from every state). The states:

- ``connecting``: the first ``connect()``, its handshake stalled (a TCP server that accepts
  and never answers);
- ``connected``: open and reading, one subscription;
- ``backoff``: the server dropped the connection, then answered 429: the supervisor sleeps
  its cool-off;
- ``redialing``: the server dropped the connection and the redial's handshake is stalled
  (a ``FaultProxy`` blackholing new connections);
- ``replaying``: reconnected, the replay's sends waiting on a throttler limit;
- ``gave_up``: the server dropped the connection, then answered 401;
- ``disconnected``: ``disconnect()`` a second time.

Only the throttler limit of ``replaying`` is a setting of the bench's choosing (the state
needs one); everything else is the factory's default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import NetworkPypeError
from networkpype.testing import FaultProxy
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest

SETTLE = 0.3  # seconds the state is given to establish itself before disconnect()


class Server:
    """An aiohttp WebSocket server on 127.0.0.1 that answers ``status`` instead of 101 when
    set; ``drop()`` aborts every open connection (the client sees 1006)."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.opened = 0
        self._opened = asyncio.Event()
        self._requests: list[web.Request] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        if self.status is not None:
            return web.Response(status=self.status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.opened += 1
        self._opened.set()
        self._requests.append(request)
        async for _ in ws:
            pass
        return ws

    def drop(self) -> None:
        for request in self._requests:
            if request.transport is not None:
                request.transport.abort()
        self._requests.clear()

    async def wait_opened(self, count: int) -> None:
        async with asyncio.timeout(10):
            while self.opened < count:
                self._opened.clear()
                await self._opened.wait()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handler)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self.drop()
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts and reads, and never answers: a stalled handshake."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{listener.sockets[0].getsockname()[1]}/ws"
    finally:
        for writer in writers:
            writer.close()
        listener.close()
        await listener.wait_closed()


def sub(name: str, limit_id: str | None = None) -> WebSocketJSONRequest:
    return WebSocketJSONRequest(
        payload={"method": "SUBSCRIBE", "params": [name]}, throttler_limit_id=limit_id
    )


async def timed_disconnect(ws: WebSocketManager) -> float:
    started = time.perf_counter()
    await ws.disconnect()
    return time.perf_counter() - started


async def connecting(factory: ConnectionManagersFactory) -> float:
    ws = await factory.get_ws_manager()
    async with silent_server() as url:
        connect = asyncio.create_task(ws.connect(url))
        await asyncio.sleep(SETTLE)
        elapsed = await timed_disconnect(ws)
        (outcome,) = await asyncio.gather(connect, return_exceptions=True)
        if not isinstance(outcome, NetworkPypeError):
            print(f"  connect() interrupted by disconnect() ended with {outcome!r}")
    return elapsed


async def connected(factory: ConnectionManagersFactory) -> float:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.subscribe(sub("a"))
        await asyncio.sleep(SETTLE)
        return await timed_disconnect(ws)


async def after_drop(factory: ConnectionManagersFactory, status: int) -> float:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.subscribe(sub("a"))
        s.status = status
        s.drop()
        await asyncio.sleep(SETTLE)
        return await timed_disconnect(ws)


async def backoff(factory: ConnectionManagersFactory) -> float:
    return await after_drop(factory, 429)


async def gave_up(factory: ConnectionManagersFactory) -> float:
    return await after_drop(factory, 401)


async def redialing(factory: ConnectionManagersFactory) -> float:
    ws = await factory.get_ws_manager()
    async with server() as s, FaultProxy(target_port=s.port) as proxy:
        await ws.connect(proxy.url_for("/ws"))
        await ws.subscribe(sub("a"))
        proxy.blackhole()  # this connection and every later one: a redial stalls
        proxy.reset_all()
        await asyncio.sleep(SETTLE)
        return await timed_disconnect(ws)


async def replaying(factory: ConnectionManagersFactory) -> float:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.subscribe(sub("a", "subscribe"))  # takes the minute's only place
        s.drop()
        await s.wait_opened(2)
        await asyncio.sleep(SETTLE)  # the replay waits for the throttler
        return await timed_disconnect(ws)


async def disconnected(factory: ConnectionManagersFactory) -> float:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.disconnect()
        return await timed_disconnect(ws)


STATES: dict[str, Callable[[ConnectionManagersFactory], Awaitable[float]]] = {
    "connecting": connecting,
    "connected": connected,
    "backoff": backoff,
    "redialing": redialing,
    "replaying": replaying,
    "gave_up": gave_up,
    "disconnected": disconnected,
}


async def run(runs: int) -> None:
    print(f"{'state':<14}{'median ms':>11}{'max ms':>9}   (disconnect(), {runs} runs)")
    for name, state in STATES.items():
        times = []
        for _ in range(runs):
            # One place a minute for the replaying state's subscription; no other limit.
            throttler = AsyncThrottler([RateLimit("subscribe", 1, 60.0)])
            factory = ConnectionManagersFactory(throttler=throttler)
            try:
                times.append(await state(factory))
            finally:
                await factory.close()
        print(f"{name:<14}{statistics.median(times) * 1e3:>11.1f}{max(times) * 1e3:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the gave_up state's WARNING is expected
    asyncio.run(run(args.runs))


if __name__ == "__main__":
    main()
