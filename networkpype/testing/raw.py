"""RawServer: a TCP server on 127.0.0.1 for peers that are not WebSocket servers at all.

::

    async with raw_server(b"HTTP/1.1 200 OK\\r\\n\\r\\n") as raw:
        await client.connect(raw.url)     # a 200 instead of a 101: the handshake fails
        assert raw.connections == 1

Each connection reads the client's request head (up to the blank line), then writes
``reply`` and closes; with ``reply=None`` it closes at once without reading. ``connections``
counts accepted TCP connections: a retry shows up there even when no HTTP request was ever
answered. For a peer that accepts and never answers, see :mod:`networkpype.testing.stall`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from networkpype.testing._tcp import LoopbackTcpServer

__all__ = ["RawServer", "raw_server"]


class RawServer(LoopbackTcpServer):
    """Answers every connection on 127.0.0.1 with the same raw bytes, then closes it."""

    def __init__(self, reply: bytes | None) -> None:
        super().__init__()
        self.reply = reply
        self.connections = 0
        self.heads: list[bytes] = []  # each request head received, in order

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            if self.reply is None:
                return
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client gave up first
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(reply: bytes | None) -> AsyncIterator[RawServer]:
    """A started :class:`RawServer` answering ``reply``, stopped on exit."""
    server = RawServer(reply)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
