"""ScriptedServer: an aiohttp WebSocket server on 127.0.0.1 that a test drives frame by frame.

::

    async with scripted_server() as server:
        await client.connect(server.url)
        peer = await server.wait_peer()
        await peer.ws.send_str('{"n": 1}')     # push any frame, or close with any code
        await peer.wait_frames(1)              # what the client sent, in order

Each accepted WebSocket is a :class:`Peer`: it records every frame it receives (with its
monotonic arrival time) and the handshake headers, and ``peer.ws`` is the server's aiohttp
WebSocket, to send text/binary/ping frames or close with a code. On the server, ``status``
makes the handshake fail with that HTTP status instead; ``status_script`` scripts the next
handshakes one by one (``None``: accept); ``extra_headers`` go with a refusal (for
``Retry-After``); ``ssl_context`` serves ``wss://``; ``attempt_times`` stamps every handshake.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableSequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["Peer", "ScriptedServer", "scripted_server"]


@dataclass
class Peer:
    """One accepted WebSocket of a :class:`ScriptedServer`."""

    ws: web.WebSocketResponse
    """The server's side of the socket: send frames or close it from the test."""
    headers: dict[str, str]
    """The client's handshake headers."""
    received: list[tuple[float, aiohttp.WSMsgType, Any]] = field(default_factory=list)
    """Every frame received: (``time.monotonic()`` of arrival, frame type, ``msg.data``)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the socket is closed, by either side."""
    request: web.Request | None = None

    def abort(self) -> None:
        """Drop the TCP connection at once: no close frame (the client sees 1006)."""
        assert self.request is not None
        assert self.request.transport is not None
        self.request.transport.abort()

    def texts(self) -> list[str]:
        """The text frames received, in order."""
        return [d for _, t, d in self.received if t is aiohttp.WSMsgType.TEXT]

    async def wait_frames(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test's bound)
    ) -> list[Any]:
        """The data of every frame received, once there are at least ``n``;
        ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while len(self.received) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return [d for _, _, d in self.received]


class ScriptedServer:
    """A WebSocket server at ``/ws`` on 127.0.0.1 (an ephemeral port) whose peers the test
    drives; ``echo=True`` sends every text and binary frame back, ``autoping=False`` leaves
    pings to the test, ``compress=False`` declines a client's offer of permessage-deflate.
    Start it with :func:`scripted_server` (or ``start()``/``stop()``)."""

    def __init__(
        self,
        *,
        echo: bool = False,
        autoping: bool = True,
        compress: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.echo = echo
        self.autoping = autoping
        self.compress = compress
        self.ssl_context = ssl_context
        self.status: int | None = None  # answer every handshake with this HTTP status
        self.status_script: list[int | None] = []  # consumed one per handshake, then `status`
        self.attempt_times: MutableSequence[float] = []  # time.monotonic() of every handshake
        self.extra_headers: dict[str, str] = {}  # sent with a refused handshake
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
        """``ws://127.0.0.1:PORT/ws`` (``wss://`` with an ``ssl_context``)."""
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/ws"

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        self.attempt_times.append(time.monotonic())
        status = self.status_script.pop(0) if self.status_script else self.status
        if status is not None:
            return web.Response(status=status, headers=self.extra_headers)
        ws = web.WebSocketResponse(autoping=self.autoping, compress=self.compress, max_msg_size=0)
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

    async def wait_peer(
        self,
        index: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test's bound)
    ) -> Peer:
        """The ``index``-th peer accepted (0: the first), once the client has connected;
        ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while len(self.peers) <= index:
                self.connected.clear()
                await self.connected.wait()
        return self.peers[index]

    async def start(self) -> None:
        """Bind an ephemeral port on 127.0.0.1 and start serving; sets ``port``."""
        app = web.Application()
        app.router.add_get("/ws", self._handler)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every open peer (1000), then stop serving and release the port."""
        for peer in list(self.live):
            if not peer.ws.closed:
                await peer.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def scripted_server(
    *,
    echo: bool = False,
    autoping: bool = True,
    compress: bool = True,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[ScriptedServer]:
    """A started :class:`ScriptedServer`, stopped on exit."""
    server = ScriptedServer(
        echo=echo, autoping=autoping, compress=compress, ssl_context=ssl_context
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
