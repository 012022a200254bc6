"""The demo server on its own event loop in a background thread, for synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

from networkpype.demo.market import StreamKind
from networkpype.demo.server import DemoServer
from networkpype.demo.statistics import DemoServerStatistics

__all__ = ["DemoServerThread"]


class DemoServerThread:
    """A :class:`DemoServer` running on its own event loop in a daemon thread, for
    synchronous code: ``with DemoServerThread(rate=50) as server: server.url``.

    Takes the same arguments as :class:`DemoServer`. ``start()`` returns once the port is
    bound (or raises what binding raised); ``stop()`` shuts the server down and joins the
    thread within ``timeout`` seconds.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.server = DemoServer(*args, **kwargs)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("DemoServerThread already started")
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(ready),), name="networkpype-demo", daemon=True
        )
        self._thread.start()
        ready.result(timeout)

    async def _serve(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            await self.server.stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and join its thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop may have just ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The protocol endpoint, ``ws://127.0.0.1:PORT/ws``."""
        return self.server.url

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    def stream_url(self, kind: StreamKind = "trade", count: int = 1000) -> str:
        """See :meth:`DemoServer.stream_url`."""
        return self.server.stream_url(kind, count)

    def statistics(self, timeout: float = 5.0) -> DemoServerStatistics:
        """A consistent snapshot, taken on the server's own loop."""
        if self._loop is None or self._thread is None:
            raise RuntimeError("DemoServerThread is not running")

        async def snapshot() -> DemoServerStatistics:
            return self.server.statistics()

        return asyncio.run_coroutine_threadsafe(snapshot(), self._loop).result(timeout)
