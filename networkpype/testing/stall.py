"""StallGate: a TCP gate on 127.0.0.1 whose connections hang: a peer that accepts and never
answers.

::

    async with stall_gate() as gate:
        connecting = asyncio.create_task(client.connect(gate.url))   # the handshake hangs
        await gate.wait_held()
        ...                                                            # stop the client
        await gate.wait_all_closed(timeout=1.0)                        # it let go of its socket

While ``silent`` (always, without ``target_port``), each connection is *held*: the gate reads
and ignores what the client sends, so a WebSocket handshake never completes, and records in
:class:`Held` when the client closed its end (EOF or reset). Otherwise a connection is
forwarded, both ways, to ``127.0.0.1:target_port`` (a real server), so one URL can serve a
first connection and then stall the redials: set ``silent = True`` and ``drop()`` the first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from networkpype.testing._tcp import LoopbackTcpServer

__all__ = ["Held", "StallGate", "stall_gate"]


@dataclass
class Held:
    """A connection the gate holds; ``closed`` is set once the client closed it."""

    closed: asyncio.Event = field(default_factory=asyncio.Event)


class StallGate(LoopbackTcpServer):
    """Holds (or, with ``target_port`` and not ``silent``, forwards) every connection made to
    ``127.0.0.1:port`` (``port=0``: an ephemeral one)."""

    def __init__(self, target_port: int | None = None, *, port: int = 0) -> None:
        super().__init__(port)
        self.target_port = target_port
        self.silent = target_port is None
        self.held: list[Held] = []
        self._changed = asyncio.Event()
        self._forwarded: list[asyncio.StreamWriter] = []  # their client sides

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            if self.silent or self.target_port is None:
                await self._hold(reader)
            else:
                await self._forward(reader, writer, self.target_port)
        finally:
            writer.close()

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        held = Held()
        self.held.append(held)
        self._changed.set()
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            held.closed.set()
            self._changed.set()

    async def _forward(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", port)
        self._writers.append(target_writer)
        self._forwarded.append(writer)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        try:
            await asyncio.gather(pipe(reader, target_writer), pipe(target_reader, writer))
        finally:
            target_writer.close()

    def drop(self) -> int:
        """Abort every forwarded connection (the client sees it break); returns how many."""
        forwarded, self._forwarded = self._forwarded, []
        for writer in forwarded:
            writer.transport.abort()
        return len(forwarded)

    async def wait_held(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 (a test's bound)
    ) -> Held:
        """The ``count``-th held connection, once the client has made it."""
        async with asyncio.timeout(timeout):
            while len(self.held) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.held[count - 1]

    def open_held(self) -> int:
        """Held connections the client has not closed."""
        return sum(not held.closed.is_set() for held in self.held)

    async def wait_all_closed(self, timeout: float) -> None:  # noqa: ASYNC109 (a test's bound)
        """Until the client closed every held connection; ``TimeoutError`` after ``timeout``."""
        async with asyncio.timeout(timeout):
            while self.open_held():
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def stall_gate(target_port: int | None = None, *, port: int = 0) -> AsyncIterator[StallGate]:
    """A started :class:`StallGate`, stopped on exit."""
    gate = StallGate(target_port, port=port)
    await gate.start()
    try:
        yield gate
    finally:
        await gate.stop()
