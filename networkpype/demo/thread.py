"""The demo server and the exchange simulator on their own event loop in a background
thread, for synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from networkpype.demo.exchange import ExchangeSimulator
from networkpype.demo.market import StreamKind
from networkpype.demo.server import DemoServer
from networkpype.demo.statistics import DemoServerStatistics, ExchangeSimulatorStatistics

__all__ = ["DemoServerThread", "ExchangeSimulatorThread"]

_T = TypeVar("_T")


class _Serving(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


_S = TypeVar("_S", bound=_Serving)


class _LoopThread(Generic[_S]):
    """Runs ``server`` on a fresh event loop in a daemon thread named ``name``."""

    def __init__(self, server: _S, name: str) -> None:
        self._server = server
        self._name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(ready),), name=self._name, daemon=True
        )
        self._thread.start()
        ready.result(timeout)

    async def _serve(self, ready: Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            await self._server.start()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            await self._server.stop()

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

    def _run(self, make: Callable[[], Coroutine[Any, Any, _T]], timeout: float) -> _T:
        """Run ``make()`` on the server's loop and return its result."""
        if self._loop is None or self._thread is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout)

    def _call(self, function: Callable[[], _T], timeout: float) -> _T:
        """Call ``function()`` on the server's loop and return its result."""

        async def call() -> _T:
            return function()

        return self._run(call, timeout)


class DemoServerThread(_LoopThread[DemoServer]):
    """A :class:`DemoServer` running on its own event loop in a daemon thread, for
    synchronous code: ``with DemoServerThread(rate=50) as server: server.url``.

    Takes the same arguments as :class:`DemoServer`. ``start()`` returns once the port is
    bound (or raises what binding raised); ``stop()`` shuts the server down and joins the
    thread within ``timeout`` seconds.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.server = DemoServer(*args, **kwargs)
        super().__init__(self.server, "networkpype-demo")

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
        return self._call(self.server.statistics, timeout)


class ExchangeSimulatorThread(_LoopThread[ExchangeSimulator]):
    """An :class:`ExchangeSimulator` on its own event loop in a daemon thread:
    ``with ExchangeSimulatorThread(max_connection_age=5) as sim: sim.url``.

    Takes the same arguments as :class:`ExchangeSimulator`; its fault hooks and
    ``statistics()`` are marshalled onto the simulator's loop and wait up to ``timeout``
    seconds for the result.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.simulator = ExchangeSimulator(*args, **kwargs)
        super().__init__(self.simulator, "networkpype-exchange")

    @property
    def url(self) -> str:
        """The venue endpoint, ``ws://127.0.0.1:PORT/ws``."""
        return self.simulator.url

    @property
    def port(self) -> int:
        """The bound port."""
        return self.simulator.port

    def statistics(self, timeout: float = 5.0) -> ExchangeSimulatorStatistics:
        """A consistent snapshot, taken on the simulator's own loop."""
        return self._call(self.simulator.statistics, timeout)

    def kill(self, connection_id: int, timeout: float = 5.0) -> bool:
        """See :meth:`ExchangeSimulator.kill`."""
        return self._call(lambda: self.simulator.kill(connection_id), timeout)

    def kill_all(self, timeout: float = 5.0) -> int:
        """See :meth:`ExchangeSimulator.kill_all`."""
        return self._call(self.simulator.kill_all, timeout)

    def close_all(self, code: int = 1000, reason: str = "", timeout: float = 10.0) -> int:
        """See :meth:`ExchangeSimulator.close_all`."""
        return self._run(lambda: self.simulator.close_all(code, reason), timeout)

    def refuse_for(self, seconds: float, timeout: float = 5.0) -> None:
        """See :meth:`ExchangeSimulator.refuse_for`."""
        self._call(lambda: self.simulator.refuse_for(seconds), timeout)

    def stall(self, connection_id: int, timeout: float = 5.0) -> None:
        """See :meth:`ExchangeSimulator.stall`."""
        self._call(lambda: self.simulator.stall(connection_id), timeout)

    def resume(self, connection_id: int, timeout: float = 5.0) -> None:
        """See :meth:`ExchangeSimulator.resume`."""
        self._call(lambda: self.simulator.resume(connection_id), timeout)
