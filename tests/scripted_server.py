"""A scriptable aiohttp WebSocket server on 127.0.0.1 for the tests.

Each accepted WebSocket is a :class:`Peer` the test drives: it records every frame it
receives (with its monotonic arrival time) and the handshake headers, and the test can push
text/binary/ping frames or close it with a code. ``status`` makes the handshake fail with
that HTTP status instead; ``status_script`` scripts the next handshakes one by one (``None``:
accept). ``ssl_context`` serves ``wss://``; ``attempt_times`` stamps every handshake.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web


@dataclass
class Peer:
    ws: web.WebSocketResponse
    headers: dict[str, str]
    received: list[tuple[float, aiohttp.WSMsgType, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    request: web.Request | None = None

    def abort(self) -> None:
        """Drop the TCP connection at once: no close frame (the client sees 1006)."""
        assert self.request is not None and self.request.transport is not None
        self.request.transport.abort()

    def texts(self) -> list[str]:
        return [d for _, t, d in self.received if t is aiohttp.WSMsgType.TEXT]

    async def wait_frames(self, n: int, timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return [d for _, _, d in self.received]


class ScriptedServer:
    def __init__(
        self,
        *,
        echo: bool = False,
        autoping: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.echo = echo
        self.autoping = autoping
        self.ssl_context = ssl_context
        self.status: int | None = None
        self.status_script: list[int | None] = []  # consumed one per handshake, then `status`
        self.attempt_times: list[float] = []  # time.monotonic() of every handshake
        self.extra_headers: dict[str, str] = {}
        self.peers: list[Peer] = []
        self.on_peer: Callable[[Peer], Awaitable[None]] | None = None  # runs after accept
        self.attempts = 0  # handshakes seen, refused ones included
        self.retain_peers = True  # False: forget a peer once it closed (long runs)
        self.live: list[Peer] = []  # peers whose socket is open
        self.connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/ws"

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        self.attempt_times.append(time.monotonic())
        status = self.status_script.pop(0) if self.status_script else self.status
        if status is not None:
            return web.Response(status=status, headers=self.extra_headers)
        ws = web.WebSocketResponse(autoping=self.autoping, max_msg_size=0)
        await ws.prepare(request)
        peer = Peer(ws, dict(request.headers), request=request)
        self.peers.append(peer)
        self.live.append(peer)
        self.connected.set()
        if self.on_peer is not None:
            await self.on_peer(peer)
        try:
            async for msg in ws:
                peer.received.append((time.monotonic(), msg.type, msg.data))
                peer.arrived.set()
                if self.echo:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        await ws.send_str(msg.data)
                    elif msg.type is aiohttp.WSMsgType.BINARY:
                        await ws.send_bytes(msg.data)
        finally:
            peer.closed.set()
            self.live.remove(peer)
            if not self.retain_peers:
                self.peers.remove(peer)
        return ws

    async def wait_peer(self, index: int = 0, timeout: float = 5.0) -> Peer:
        async with asyncio.timeout(timeout):
            while len(self.peers) <= index:
                self.connected.clear()
                await self.connected.wait()
        return self.peers[index]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handler)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for peer in list(self.live):
            if not peer.ws.closed:
                await peer.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def scripted_server(**kwargs: Any) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
