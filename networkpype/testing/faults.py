"""FaultProxy: a loopback TCP proxy that injects network faults, for chaos tests and the demo.

::

    async with FaultProxy(target_port=server_port, seed=7) as proxy:
        ws = await session.ws_connect(proxy.url_for("/ws"))
        proxy.latency(0.05)          # every chunk, each way, 50 ms later
        proxy.reset_all()            # the client sees ECONNRESET
        await proxy.play(ChaosSchedule(proxy.seed))

How each fault is made:

* **reset** -- SO_LINGER {on, 0 s} on the client socket, then close: the kernel sends RST,
  so the client's next read or write fails with ``ConnectionResetError`` (not a clean EOF).
  The target side is reset the same way.
* **blackhole** -- both writer tasks read and discard every chunk (and EOF); sockets stay open.
* **stall** -- both writer tasks hold their chunks; the bounded queues fill and TCP
  backpressure stops the senders. Nothing is lost; switching it off releases the backlog.
* **latency / bandwidth** -- chunks are stamped on arrival and released at
  ``max(arrival, end of previous transmission) + size/rate + latency``; see
  :mod:`networkpype.testing._shaping`. Each direction is shaped separately.
* **refuse_new** -- the listener stays open (so the port cannot be taken by someone else),
  but each new connection is reset as soon as it is accepted. The kernel has already
  completed the TCP handshake, so a raw ``connect()`` returns and the first read or write
  fails with ``ConnectionResetError``; an HTTP or WebSocket client sees its handshake fail.

Fault methods act at once and are plain (non-async) calls, so they can be made from any
task of the proxy's loop. ``conn_id=None`` means proxy-wide: every open connection, and the
default for connections accepted later; a ``conn_id`` touches that connection only.

Logging, on the ``networkpype.testing.faults`` logger: INFO for every fault switched, every
refused connection and every reset; DEBUG for connections opened and closed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import ipaddress
import logging
import math
import random
from collections.abc import Coroutine, Sequence

import msgspec

from networkpype.protocol.errors import ConfigurationError, UsageError
from networkpype.testing._link import Link, LinkCounters, LinkFaults, reset_transport
from networkpype.testing.chaos import (
    DEFAULT_KINDS,
    Bandwidth,
    Blackhole,
    ChaosSchedule,
    Fault,
    FaultKind,
    Heal,
    Latency,
    RefuseNew,
    Reset,
    Stall,
)

__all__ = ["ConnectionInfo", "FaultProxy", "FaultProxyStatistics", "ProxyState"]

logger = logging.getLogger(__name__)

CLOSE_DEADLINE_SECONDS = 0.1
"""How long :meth:`FaultProxy.close` waits for its cancelled tasks before logging a warning."""


class ProxyState(enum.Enum):
    """The life of a :class:`FaultProxy`: CREATED -start-> SERVING -close-> CLOSED."""

    CREATED = "created"
    SERVING = "serving"
    CLOSED = "closed"


_TRANSITIONS: dict[tuple[ProxyState, str], ProxyState] = {
    (ProxyState.CREATED, "start"): ProxyState.SERVING,
    (ProxyState.CREATED, "close"): ProxyState.CLOSED,
    (ProxyState.SERVING, "close"): ProxyState.CLOSED,
    (ProxyState.CLOSED, "close"): ProxyState.CLOSED,
}


class ConnectionInfo(msgspec.Struct, frozen=True):
    """A snapshot of one open proxied connection; byte counts are bytes written so far."""

    conn_id: int
    client_address: str
    bytes_to_target: int
    bytes_to_client: int
    bytes_dropped: int
    latency_seconds: float
    bytes_per_second: float | None
    blackholed: bool
    stalled: bool


class FaultProxyStatistics(msgspec.Struct, frozen=True):
    """A snapshot of the proxy's counters since it started (bytes over all connections)."""

    connections_accepted: int
    connections_refused: int
    connections_active: int
    bytes_to_target: int
    bytes_to_client: int
    bytes_dropped: int


def _loopback(host: str, what: str) -> str:
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ConfigurationError(
            f"FaultProxy: {what}={host!r} is not an IP address; use 127.0.0.1 or ::1"
        ) from exc
    if not address.is_loopback:
        raise ConfigurationError(
            f"FaultProxy: {what}={host!r} is not loopback; only 127.0.0.0/8 and ::1 are allowed"
        )
    return str(address)


class FaultProxy:
    """A TCP proxy on loopback between clients and ``target_host:target_port``.

    Use it as ``async with FaultProxy(target_port=...) as proxy`` or call :meth:`start` and
    :meth:`close`. ``listen_port=0`` picks a free port; read it from :attr:`port` once
    started. ``seed`` (random when None) seeds :meth:`chaos_schedule`; print :attr:`seed`
    when a chaos test fails. A target that does not accept within ``connect_timeout``
    seconds gets the client reset.

    Raises ``ConfigurationError`` (a ``ValueError``) for a host outside 127.0.0.0/8 and ::1
    or a port out of range.
    """

    def __init__(
        self,
        target_host: str = "127.0.0.1",
        target_port: int = 0,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        seed: int | None = None,
        connect_timeout: float = 1.0,
    ) -> None:
        self.target_host = _loopback(target_host, "target_host")
        self.listen_host = _loopback(listen_host, "listen_host")
        if not 0 < target_port < 65536:
            raise ConfigurationError(f"FaultProxy: target_port={target_port} is not a port")
        if not 0 <= listen_port < 65536:
            raise ConfigurationError(f"FaultProxy: listen_port={listen_port} is not a port")
        self.target_port = target_port
        self.seed: int = random.SystemRandom().randrange(2**32) if seed is None else seed
        self._listen_port = listen_port
        self._connect_timeout = connect_timeout
        self._state = ProxyState.CREATED
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: dict[int, Link] = {}
        self._defaults = LinkFaults()
        self._totals = LinkCounters()
        self._next_id = 1
        self._accepted = 0
        self._refused = 0
        self._refuse_forever = False
        self._refuse_until = -math.inf

    def __repr__(self) -> str:
        return (
            f"<FaultProxy {self._state.value} :{self.port} -> "
            f"{self.target_host}:{self.target_port} seed={self.seed}>"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def _transition(self, event: str) -> ProxyState:
        try:
            return _TRANSITIONS[(self._state, event)]
        except KeyError:
            raise UsageError(f"FaultProxy: cannot {event} while {self._state.value}") from None

    @property
    def state(self) -> ProxyState:
        """Where the proxy is in its life."""
        return self._state

    async def start(self) -> None:
        """Bind the listener; on return :attr:`port` is set and connections are accepted."""
        next_state = self._transition("start")
        self._server = await asyncio.start_server(
            self._on_accept, self.listen_host, self._listen_port
        )
        self._listen_port = self._server.sockets[0].getsockname()[1]
        self._state = next_state
        logger.info("%s: listening", self)

    async def close(self) -> None:
        """Stop listening, reset every connection, and cancel and await every task.

        Returns with no task or socket of the proxy left, normally within a few ms; a task
        still running after ``CLOSE_DEADLINE_SECONDS`` is logged. Idempotent.
        """
        self._state = self._transition("close")
        if self._server is not None:
            self._server.close()
        for link in list(self._links.values()):
            link.reset()
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_DEADLINE_SECONDS)
            if pending:
                logger.warning("%s: %d tasks still running after close", self, len(pending))
        self._links.clear()  # links whose task was cancelled before it ever ran
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The listening port (the requested ``listen_port`` until :meth:`start` returns)."""
        return self._listen_port

    def url_for(self, path: str = "/", scheme: str = "ws") -> str:
        """``ws://127.0.0.1:{port}{path}`` (IPv6 hosts are bracketed); ``path`` starts with /."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{scheme}://{host}:{self.port}{path}"

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("%s: task %s failed", self, task.get_name(), exc_info=exc)

    # -- connections -------------------------------------------------------------------------

    def _refusing(self) -> bool:
        return self._refuse_forever or asyncio.get_running_loop().time() < self._refuse_until

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain function, so asyncio starts no task of its own for the connection.
        if self._state is not ProxyState.SERVING or self._refusing():
            self._refused += 1
            logger.info("%s: refusing %s", self, writer.get_extra_info("peername"))
            reset_transport(writer)
            return
        self._accepted += 1
        link = Link(
            self._next_id,
            (reader, writer),
            dataclasses.replace(self._defaults),
            self._totals,
            context=f"FaultProxy :{self.port}",
        )
        self._next_id += 1
        self._links[link.id] = link
        link.task = self._spawn(self._serve(link), name=str(link))
        logger.debug("%s: accepted", link)

    async def _serve(self, link: Link) -> None:
        try:
            await link.run(self.target_host, self.target_port, self._connect_timeout)
        finally:
            del self._links[link.id]
            logger.debug("%s: closed", link)

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Snapshots of the open connections, oldest first; ids count up from 1."""
        return [
            ConnectionInfo(
                conn_id=link.id,
                client_address=link.client_address,
                bytes_to_target=link.counters.bytes_to_target,
                bytes_to_client=link.counters.bytes_to_client,
                bytes_dropped=link.counters.bytes_dropped,
                latency_seconds=link.faults.latency_seconds,
                bytes_per_second=link.faults.bytes_per_second,
                blackholed=link.faults.blackholed,
                stalled=link.faults.stalled,
            )
            for link in self._links.values()
        ]

    def statistics(self) -> FaultProxyStatistics:
        """A frozen snapshot of the counters."""
        return FaultProxyStatistics(
            connections_accepted=self._accepted,
            connections_refused=self._refused,
            connections_active=len(self._links),
            bytes_to_target=self._totals.bytes_to_target,
            bytes_to_client=self._totals.bytes_to_client,
            bytes_dropped=self._totals.bytes_dropped,
        )

    # -- faults ------------------------------------------------------------------------------

    def _targets(self, conn_id: int | None) -> list[Link] | None:
        """The links a fault applies to; None when ``conn_id`` names no open connection."""
        if conn_id is None:
            return list(self._links.values())
        link = self._links.get(conn_id)
        return None if link is None else [link]

    def reset(self, conn_id: int) -> bool:
        """Reset connection ``conn_id`` (RST to the client and the target).

        Returns False when no such connection is open (it may have just closed).
        """
        link = self._links.get(conn_id)
        if link is None:
            return False
        logger.info("%s: reset", link)
        link.reset()
        return True

    def reset_all(self) -> int:
        """Reset every open connection; returns how many."""
        links = list(self._links.values())
        logger.info("%s: reset all %d connections", self, len(links))
        for link in links:
            link.reset()
        return len(links)

    def _set(self, conn_id: int | None, fault: str, value: object) -> bool:
        links = self._targets(conn_id)
        if links is None:
            return False
        where = "all connections" if conn_id is None else f"connection {conn_id}"
        logger.info("%s: %s=%r on %s", self, fault, value, where)
        if conn_id is None:
            setattr(self._defaults, fault, value)
        for link in links:
            if fault == "stalled":
                link.set_stalled(bool(value))
            else:
                setattr(link.faults, fault, value)
        return True

    def blackhole(self, on: bool = True, *, conn_id: int | None = None) -> bool:
        """Silently drop every byte both ways while ``on``; sockets stay open, no EOF passes.

        Returns False when ``conn_id`` names no open connection.
        """
        return self._set(conn_id, "blackholed", on)

    def stall(self, on: bool = True, *, conn_id: int | None = None) -> bool:
        """Hold every byte both ways while ``on`` (kept, not dropped; released when off).

        Returns False when ``conn_id`` names no open connection.
        """
        return self._set(conn_id, "stalled", on)

    def latency(self, seconds: float, *, conn_id: int | None = None) -> bool:
        """Delay each chunk by ``seconds`` (>= 0) in each direction, one way; 0 removes it.

        A stream is delayed once, not per chunk. Returns False when ``conn_id`` names no open
        connection.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigurationError(f"FaultProxy.latency: seconds={seconds} is not >= 0")
        return self._set(conn_id, "latency_seconds", float(seconds))

    def bandwidth(self, bytes_per_second: float | None, *, conn_id: int | None = None) -> bool:
        """Limit each direction to ``bytes_per_second`` (> 0); None lifts the limit.

        Returns False when ``conn_id`` names no open connection.
        """
        if bytes_per_second is not None and not bytes_per_second > 0:
            raise ConfigurationError(f"FaultProxy.bandwidth: {bytes_per_second} is not > 0")
        rate = None if bytes_per_second is None else float(bytes_per_second)
        return self._set(conn_id, "bytes_per_second", rate)

    def refuse_new(self, seconds: float | None = None, *, on: bool = True) -> None:
        """Reset new connections on accept: for ``seconds`` from now, or until ``on=False``.

        Open connections are not touched. ``refuse_new(on=False)`` lifts either form.
        """
        loop = asyncio.get_running_loop()
        self._refuse_forever = on and seconds is None
        self._refuse_until = loop.time() + seconds if on and seconds is not None else -math.inf
        logger.info("%s: refuse_new seconds=%s on=%s", self, seconds, on)

    def heal(self) -> None:
        """Switch every fault off, proxy-wide and on every open connection."""
        logger.info("%s: heal", self)
        self.refuse_new(on=False)
        self._defaults = LinkFaults()
        for link in self._links.values():
            link.set_stalled(False)
            link.faults.latency_seconds = 0.0
            link.faults.bytes_per_second = None
            link.faults.blackholed = False

    def apply(self, fault: Fault) -> None:
        """Switch one :mod:`~networkpype.testing.chaos` fault value on or off."""
        match fault:
            case Reset(conn_id=None):
                self.reset_all()
            case Reset(conn_id=int(conn_id)):
                self.reset(conn_id)
            case Blackhole(on=on, conn_id=conn_id):
                self.blackhole(on, conn_id=conn_id)
            case Stall(on=on, conn_id=conn_id):
                self.stall(on, conn_id=conn_id)
            case Latency(seconds=seconds, conn_id=conn_id):
                self.latency(seconds, conn_id=conn_id)
            case Bandwidth(bytes_per_second=rate, conn_id=conn_id):
                self.bandwidth(rate, conn_id=conn_id)
            case RefuseNew(seconds=seconds, on=on):
                self.refuse_new(seconds, on=on)
            case Heal():
                self.heal()

    # -- chaos -------------------------------------------------------------------------------

    def chaos_schedule(
        self,
        *,
        duration_seconds: float = 2.0,
        mean_gap_seconds: float = 0.25,
        max_fault_seconds: float = 0.5,
        kinds: Sequence[FaultKind] = DEFAULT_KINDS,
    ) -> ChaosSchedule:
        """A random :class:`ChaosSchedule` drawn from :attr:`seed` (arguments in seconds)."""
        return ChaosSchedule(
            self.seed,
            duration_seconds=duration_seconds,
            mean_gap_seconds=mean_gap_seconds,
            max_fault_seconds=max_fault_seconds,
            kinds=kinds,
        )

    async def play(self, schedule: ChaosSchedule) -> None:
        """Apply each event of ``schedule`` at its time after the call (monotonic seconds).

        Returns after the last event; the caller owns the wait (see :meth:`start_playing`).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        logger.info("%s: playing chaos seed=%d (%d events)", self, schedule.seed, len(schedule))
        for at_seconds, fault in schedule:
            delay = started + at_seconds - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            logger.info("%s: chaos seed=%d t=%.3f %r", self, schedule.seed, at_seconds, fault)
            self.apply(fault)

    def start_playing(self, schedule: ChaosSchedule) -> asyncio.Task[None]:
        """Play ``schedule`` in a task the proxy owns (cancelled by :meth:`close`).

        Await the returned task to wait for the last event.
        """
        if self._state is not ProxyState.SERVING:
            raise UsageError(f"FaultProxy: cannot play a schedule while {self._state.value}")
        return self._spawn(self.play(schedule), name=f"FaultProxy :{self.port} chaos")
