"""A raw TCP server on 127.0.0.1 for peers that are not WebSocket servers at all.

Each connection reads the client's request head (up to the blank line), then writes
``reply`` and closes; with ``reply=None`` it closes at once without reading, and with
``silent=True`` it reads the head and never answers (held open until ``stop()``).
``connections`` counts accepted TCP connections: a retry shows up there even when no HTTP
request was ever answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RawServer:
    def __init__(self, reply: bytes | None, *, silent: bool = False) -> None:
        self.reply = reply
        self.silent = silent
        self.connections = 0
        self.heads: list[bytes] = []  # each request head received, in order
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._held = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            if self.reply is None and not self.silent:
                return
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            if self.silent:
                await self._held.wait()
                return
            assert self.reply is not None
            writer.write(self.reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client gave up first
        finally:
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._held.set()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@asynccontextmanager
async def raw_server(reply: bytes | None, *, silent: bool = False) -> AsyncIterator[RawServer]:
    server = RawServer(reply, silent=silent)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
