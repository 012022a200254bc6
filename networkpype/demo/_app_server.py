"""The lifecycle the demo server and the exchange simulator share: an aiohttp application
bound to loopback, started and stopped once, closed to new connections after ``lifetime``
seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web

__all__ = ["LOOPBACK_HOSTS", "LoopbackAppServer"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class LoopbackAppServer:
    """Base of the loopback servers: binds ``host:port``, serves the routes of
    :meth:`_add_routes`, and after ``lifetime`` seconds (monotonic) sets ``_expired`` and
    calls :meth:`_on_lifetime_over`. ``stop()`` cancels the timer, calls :meth:`_on_stop`,
    then releases the port.

    Subclasses set ``_name`` (the class name in errors), ``_label`` (the server in log
    records) and ``_logger`` (their module's logger, so records keep their origin).
    """

    _name: ClassVar[str]
    _label: ClassVar[str]
    _logger: ClassVar[logging.Logger]

    def __init__(self, host: str, port: int, lifetime: float) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the {self._label} binds to loopback only, not {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be within 0..65535, not {port}")
        self._host = host
        self._requested_port = port
        self.lifetime = lifetime
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._lifetime_task: asyncio.Task[None] | None = None
        self._expired = False

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _on_stop(self) -> None:
        """Close the connections and end the tasks the subclass owns; the port is still bound."""

    async def _on_lifetime_over(self) -> None:
        """Close the connections; new handshakes already see ``_expired``."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start serving; raises ``RuntimeError`` if already started."""
        if self._runner is not None:
            raise RuntimeError(f"{self._name} already started")
        app = web.Application()
        self._add_routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])  # the port bound (the requested one may be 0)
        self._runner = runner
        self._expired = False
        self._lifetime_task = asyncio.create_task(self._expire_after(self.lifetime))
        self._logger.info(
            "%s listening on %s (lifetime %.0f s)", self._label, self.url, self.lifetime
        )

    async def stop(self) -> None:
        """Close every connection with 1001, stop serving and release the port (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        task, self._lifetime_task = self._lifetime_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._on_stop()
        await runner.cleanup()
        self._logger.info("%s on port %s stopped", self._label, self._port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _expire_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._expired = True
        self._logger.info(
            "%s lifetime of %.0f s is over: closing connections", self._label, seconds
        )
        await self._on_lifetime_over()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The loopback address the server binds to."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one when constructed with port 0)."""
        if self._port is None or self._runner is None:
            raise RuntimeError(f"{self._name} is not running; call start() or use `async with`")
        return self._port

    @property
    def _ws_base(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The WebSocket endpoint, ``ws://127.0.0.1:PORT/ws``."""
        return f"{self._ws_base}/ws"
