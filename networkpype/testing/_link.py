"""One proxied connection: a client socket, a target socket, and two shaped directions.

Each direction is a reader task that stamps every chunk with its monotonic arrival time and
puts it on a bounded queue, and a writer task that waits until the chunk's release time
(:class:`~networkpype.testing._shaping.LinkShaper`), honours the stall and blackhole switches,
writes it and drains. The queue holds at most ``_QUEUE_CHUNKS`` reads of at most
``_READ_SIZE`` bytes, so a slow or stalled sink stops the reader and TCP pushes back on the
sender. The four tasks live in a TaskGroup inside :meth:`Link.run`, which the proxy owns.

End of a connection:

* EOF on one side is forwarded as EOF (``write_eof``) after the data before it; when both
  directions have ended, both sockets are closed cleanly (FIN).
* An error on either socket resets both (RST), as would a middlebox losing its state.
* :meth:`Link.reset` resets both sockets at once and cancels :meth:`Link.run`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import struct
from contextlib import suppress
from dataclasses import dataclass

from networkpype.testing._shaping import LinkShaper, piece_size

__all__ = ["Direction", "Link", "LinkCounters", "LinkFaults", "reset_transport"]

logger = logging.getLogger("networkpype.testing.faults")

_READ_SIZE = 64 * 1024
_QUEUE_CHUNKS = 16  # with _READ_SIZE: at most 1 MiB queued per direction
_RST_LINGER = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, not FIN

_Chunk = tuple[float, bytes]  # (arrival time on the loop clock, data); b"" is EOF


class Direction(enum.Enum):
    """Which way bytes travel through the proxy."""

    TO_TARGET = "to_target"
    TO_CLIENT = "to_client"


@dataclass
class LinkFaults:
    """The fault switches of one connection (or the proxy's defaults for new ones)."""

    latency_seconds: float = 0.0
    bytes_per_second: float | None = None
    blackholed: bool = False
    stalled: bool = False


@dataclass
class LinkCounters:
    """Bytes written on, and bytes dropped (blackholed) from, each direction."""

    bytes_to_target: int = 0
    bytes_to_client: int = 0
    bytes_dropped: int = 0

    def add(self, direction: Direction, *, forwarded: int = 0, dropped: int = 0) -> None:
        if direction is Direction.TO_TARGET:
            self.bytes_to_target += forwarded
        else:
            self.bytes_to_client += forwarded
        self.bytes_dropped += dropped


def reset_transport(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s socket with a TCP RST (SO_LINGER 0), dropping anything unsent."""
    transport = writer.transport
    if not transport.is_closing():
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
    transport.abort()


class Link:
    """A client connection accepted by the proxy and its connection to the target."""

    def __init__(
        self,
        conn_id: int,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        faults: LinkFaults,
        totals: LinkCounters,
        *,
        context: str,
    ) -> None:
        self.id = conn_id
        self.faults = faults
        self.counters = LinkCounters()
        self.task: asyncio.Task[None] | None = None  # set by the proxy that owns the link
        self._client_reader, self._client_writer = client
        self._target: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._totals = totals
        self._flowing = asyncio.Event()
        if not faults.stalled:
            self._flowing.set()
        peer = self._client_writer.get_extra_info("peername")
        self.client_address = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._name = f"{context} conn {conn_id} from {self.client_address}"

    def __str__(self) -> str:
        return self._name

    def set_stalled(self, on: bool) -> None:
        """Hold (``on``) or release every byte in both directions."""
        self.faults.stalled = on
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    def reset(self) -> None:
        """Reset both sockets now and cancel :meth:`run` (a no-op once closed)."""
        self._close(rst=True)
        if self.task is not None:
            self.task.cancel()

    async def run(self, target_host: str, target_port: int, connect_timeout: float) -> None:
        """Connect to the target and forward until both directions end or a socket fails.

        A target that cannot be reached within ``connect_timeout`` seconds resets the client.
        Returns with both sockets closed; raises only ``CancelledError``.
        """
        try:
            try:
                async with asyncio.timeout(connect_timeout):
                    self._target = await asyncio.open_connection(target_host, target_port)
            except OSError as exc:  # includes TimeoutError
                logger.info(
                    "%s: target %s:%d unreachable (%r)", self, target_host, target_port, exc
                )
                self._close(rst=True)
                return
            logger.debug("%s: forwarding to %s:%d", self, target_host, target_port)
            to_target: asyncio.Queue[_Chunk] = asyncio.Queue(_QUEUE_CHUNKS)
            to_client: asyncio.Queue[_Chunk] = asyncio.Queue(_QUEUE_CHUNKS)
            target_reader, target_writer = self._target
            try:
                async with asyncio.TaskGroup() as group:
                    for coro, role in (
                        (self._read(self._client_reader, to_target), "read client"),
                        (self._write(to_target, target_writer, Direction.TO_TARGET), "to target"),
                        (self._read(target_reader, to_client), "read target"),
                        (
                            self._write(to_client, self._client_writer, Direction.TO_CLIENT),
                            "to client",
                        ),
                    ):
                        group.create_task(coro, name=f"{self}: {role}")
            except* OSError as failure:
                logger.info("%s: %r; resetting both sides", self, failure.exceptions[0])
                self._close(rst=True)
            else:
                logger.debug("%s: both directions ended", self)
        finally:
            await self._close_gracefully()

    async def _read(self, source: asyncio.StreamReader, queue: asyncio.Queue[_Chunk]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            chunk = await source.read(_READ_SIZE)
            await queue.put((loop.time(), chunk))  # blocks when full: backpressure on the sender
            if not chunk:
                return

    async def _write(
        self, queue: asyncio.Queue[_Chunk], sink: asyncio.StreamWriter, direction: Direction
    ) -> None:
        loop = asyncio.get_running_loop()
        shaper = LinkShaper()
        faults = self.faults  # mutated in place by the proxy, read afresh for every piece
        while True:
            arrival, chunk = await queue.get()
            if not chunk:
                await self._flowing.wait()
                if not faults.blackholed and sink.can_write_eof():
                    sink.write_eof()
                return
            view = memoryview(chunk)
            step = piece_size(len(chunk), faults.bytes_per_second)
            for start in range(0, len(chunk), step):
                piece = view[start : start + step]
                release = shaper.release_time(
                    arrival,
                    len(piece),
                    latency_seconds=faults.latency_seconds,
                    bytes_per_second=faults.bytes_per_second,
                )
                delay = release - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._flowing.wait()
                if faults.blackholed:
                    self.counters.add(direction, dropped=len(piece))
                    self._totals.add(direction, dropped=len(piece))
                    continue
                sink.write(piece)
                self.counters.add(direction, forwarded=len(piece))
                self._totals.add(direction, forwarded=len(piece))
                await sink.drain()

    def _writers(self) -> list[asyncio.StreamWriter]:
        if self._target is None:
            return [self._client_writer]
        return [self._client_writer, self._target[1]]

    def _close(self, *, rst: bool) -> None:
        for writer in self._writers():
            if rst:
                reset_transport(writer)
            else:
                writer.close()  # flushes what is buffered, then FIN

    async def _close_gracefully(self) -> None:
        self._close(rst=False)
        try:
            for writer in self._writers():
                with suppress(OSError):
                    await writer.wait_closed()
        finally:
            # Cancelled while a peer that does not read holds up the flush: drop the rest.
            for writer in self._writers():
                writer.transport.abort()
