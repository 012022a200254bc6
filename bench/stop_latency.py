"""How long ``WebSocketManager.disconnect()`` takes from each state, with default settings.

    .venv/bin/python bench/stop_latency.py [--runs 5]

Each state is set up against loopback servers, then ``disconnect()`` is timed; the median
and the largest of ``--runs`` runs are printed per state, in milliseconds (issue 9: under
100 ms from every state, every socket closed by then). ``open at return`` is the most client
sockets to the server (this process's TCP sockets whose remote port is the server's, from
``/proc``) still open when ``disconnect()`` returned, ``a turn later`` the same after one
more turn of the event loop (asyncio closes a socket in the turn after ``close()``), ``idle
in pool`` those of them that are idle keep-alive HTTP connections in the aiohttp session's
pool (a refused handshake's answer leaves its connection there: the session's, reused by the
next request, closed after aiohttp's ``keepalive_timeout`` or with the session). The states:

- ``connecting``: the first ``connect()``, its handshake stalled (a TCP server that accepts
  and never answers);
- ``connected``: open and reading, one subscription;
- ``backoff``: the server dropped the connection, then answered 429: the supervisor sleeps
  its cool-off;
- ``redialing``: the server dropped the connection and the redial's handshake is stalled
  (a ``FaultProxy`` blackholing new connections);
- ``replaying``: reconnected, the replay's sends waiting on a throttler limit;
- ``gave_up``: the server dropped the connection, then answered 401;
- ``disconnected``: ``disconnect()`` a second time;
- ``sync connecting``, ``sync redialing``: the same states under ``SyncNetworkPype()``
  (defaults), whose ``stop()`` is timed, called from a thread while ``connect()`` blocks in
  another.

Only the throttler limit of ``replaying`` is a setting of the bench's choosing (the state
needs one); everything else is the factory's default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from networkpype.embedding import SyncNetworkPype
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import NetworkPypeError
from networkpype.testing import FaultProxy
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest

SETTLE = 0.3  # seconds the state is given to establish itself before disconnect()


def client_sockets(port: int) -> int:
    """This process's TCP sockets whose remote port is ``port`` (-1 without ``/proc``)."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    inodes = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                count += remote == port and fields[9] in inodes
    return count


def pooled(session: aiohttp.ClientSession | None) -> int:
    """Idle keep-alive connections in ``session``'s pool (aiohttp's private ``_conns``)."""
    conns = getattr(session.connector, "_conns", {}) if session is not None else {}
    return sum(len(idle) for idle in conns.values())


class Timing:
    """One ``disconnect()`` (or ``stop()``): seconds, and client sockets left open."""

    def __init__(self, seconds: float, at_return: int, a_turn_later: int, idle: int) -> None:
        self.seconds = seconds
        self.open_at_return = at_return
        self.open_a_turn_later = a_turn_later
        self.idle_in_pool = idle


async def timed(
    stop: Callable[[], Awaitable[None]],
    port: int,
    session: aiohttp.ClientSession | None = None,
) -> Timing:
    started = time.perf_counter()
    await stop()
    elapsed = time.perf_counter() - started
    at_return = client_sockets(port)
    await asyncio.sleep(0)
    return Timing(elapsed, at_return, client_sockets(port), pooled(session))


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


def session(ws: WebSocketManager) -> aiohttp.ClientSession:
    return ws.connection._session  # the pool


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def connecting(factory: ConnectionManagersFactory) -> Timing:
    ws = await factory.get_ws_manager()
    async with silent_server() as url:
        connect = asyncio.create_task(ws.connect(url))
        await asyncio.sleep(SETTLE)
        timing = await timed(ws.disconnect, port_of(url), session(ws))
        (outcome,) = await asyncio.gather(connect, return_exceptions=True)
        if not isinstance(outcome, NetworkPypeError):
            print(f"  connect() interrupted by disconnect() ended with {outcome!r}")
    return timing


async def connected(factory: ConnectionManagersFactory) -> Timing:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.subscribe(sub("a"))
        await asyncio.sleep(SETTLE)
        return await timed(ws.disconnect, s.port, session(ws))


async def after_drop(factory: ConnectionManagersFactory, status: int) -> Timing:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.subscribe(sub("a"))
        s.status = status
        s.drop()
        await asyncio.sleep(SETTLE)
        return await timed(ws.disconnect, s.port, session(ws))


async def backoff(factory: ConnectionManagersFactory) -> Timing:
    return await after_drop(factory, 429)


async def gave_up(factory: ConnectionManagersFactory) -> Timing:
    return await after_drop(factory, 401)


async def redialing(factory: ConnectionManagersFactory) -> Timing:
    ws = await factory.get_ws_manager()
    async with server() as s, FaultProxy(target_port=s.port) as proxy:
        await ws.connect(proxy.url_for("/ws"))
        await ws.subscribe(sub("a"))
        proxy.blackhole()  # this connection and every later one: a redial stalls
        proxy.reset_all()
        await asyncio.sleep(SETTLE)
        return await timed(ws.disconnect, proxy.port, session(ws))


async def replaying(factory: ConnectionManagersFactory) -> Timing:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.subscribe(sub("a", "subscribe"))  # takes the minute's only place
        s.drop()
        await s.wait_opened(2)
        await asyncio.sleep(SETTLE)  # the replay waits for the throttler
        return await timed(ws.disconnect, s.port, session(ws))


async def disconnected(factory: ConnectionManagersFactory) -> Timing:
    ws = await factory.get_ws_manager()
    async with server() as s:
        await ws.connect(s.url)
        await ws.disconnect()
        return await timed(ws.disconnect, s.port, session(ws))


async def sync_stop(pype: SyncNetworkPype, port: int) -> Timing:
    """``pype.stop()`` timed in a thread, as a host's thread calls it."""
    return await timed(lambda: asyncio.to_thread(pype.stop), port)


async def sync_connecting(_factory: ConnectionManagersFactory) -> Timing:
    pype = SyncNetworkPype()
    async with silent_server() as url:
        connect = asyncio.create_task(asyncio.to_thread(pype.connect, url))
        await asyncio.sleep(SETTLE)
        timing = await sync_stop(pype, port_of(url))
        (outcome,) = await asyncio.gather(connect, return_exceptions=True)
        if not isinstance(outcome, NetworkPypeError):
            print(f"  connect() interrupted by stop() ended with {outcome!r}")
    return timing


async def sync_redialing(_factory: ConnectionManagersFactory) -> Timing:
    pype = SyncNetworkPype()
    async with server() as s, FaultProxy(target_port=s.port) as proxy:
        await asyncio.to_thread(pype.connect, proxy.url_for("/ws"))
        await asyncio.to_thread(pype.subscribe, sub("a"))
        proxy.blackhole()
        proxy.reset_all()
        await asyncio.sleep(SETTLE)
        return await sync_stop(pype, proxy.port)


STATES: dict[str, Callable[[ConnectionManagersFactory], Awaitable[Timing]]] = {
    "connecting": connecting,
    "connected": connected,
    "backoff": backoff,
    "redialing": redialing,
    "replaying": replaying,
    "gave_up": gave_up,
    "disconnected": disconnected,
    "sync connecting": sync_connecting,
    "sync redialing": sync_redialing,
}


async def run(runs: int) -> bool:
    """Print the table; True when every state met 100 ms and left no socket open."""
    head = f"{'state':<17}{'median ms':>10}{'max ms':>9}"
    print(f"{head}{'open at return':>16}{'a turn later':>14}{'idle in pool':>14}")
    ok = True
    for name, state in STATES.items():
        timings = []
        for _ in range(runs):
            # One place a minute for the replaying state's subscription; no other limit.
            throttler = AsyncThrottler([RateLimit("subscribe", 1, 60.0)])
            factory = ConnectionManagersFactory(throttler=throttler)
            try:
                timings.append(await state(factory))
            finally:
                await factory.close()
        seconds = [t.seconds for t in timings]
        at_return = max(t.open_at_return for t in timings)
        later = max(t.open_a_turn_later for t in timings)
        idle = max(t.idle_in_pool for t in timings)
        print(
            f"{name:<17}{statistics.median(seconds) * 1e3:>10.1f}{max(seconds) * 1e3:>9.1f}"
            f"{at_return:>16}{later:>14}{idle:>14}"
        )
        left = max(t.open_a_turn_later - t.idle_in_pool for t in timings)
        ok &= statistics.median(seconds) <= 0.1 and left == 0
    print(
        f"(disconnect() or stop(), {runs} runs a state; target: median <= 100 ms, no socket "
        "open a turn later but those idle in the session's pool)"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the gave_up state's WARNING is expected
    sys.exit(0 if asyncio.run(run(args.runs)) else 1)


if __name__ == "__main__":
    main()
