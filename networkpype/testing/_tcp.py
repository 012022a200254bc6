"""The lifecycle the raw TCP peers share: a listener on 127.0.0.1 whose connections are closed
on ``stop()``."""

from __future__ import annotations

import asyncio

__all__ = ["LoopbackTcpServer"]


class LoopbackTcpServer:
    """Serves :meth:`_handle` on ``127.0.0.1:port`` (``port=0``: an ephemeral one); every
    writer appended to ``_writers`` is closed by ``stop()``."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/ws``."""
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Bind the port on 127.0.0.1 and start serving; sets ``port`` to the one bound."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection, stop serving and release the port."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
