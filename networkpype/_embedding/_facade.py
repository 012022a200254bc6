"""``_SyncFacade``: what both blocking facades share (lifecycle, loop thread, commands, reading).

Part of the blocking facades; import the public names from :mod:`networkpype.embedding`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, Self, TypeVar

from networkpype._embedding._handoff import _HandOff
from networkpype._embedding._stream import SyncStream, _refuse_on_a_loop
from networkpype.facade import NetworkPype
from networkpype.protocol.errors import ConfigurationError, NotConnectedError
from networkpype.runtime import LoopThread, get_loop_thread
from networkpype.wire.connection import WebSocketConnection
from networkpype.wire.decoding import DecoderSpec

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.wire.processor import WebSocketPostProcessor, WebSocketPreProcessor

__all__ = ["DEFAULT_CALL_TIMEOUT", "DEFAULT_MAX_PENDING"]

# The facades' records keep the public module's name.
logger = logging.getLogger("networkpype.embedding")
T = TypeVar("T")

DEFAULT_CALL_TIMEOUT: Final = 10.0
"""Seconds a command waits for the loop when no ``timeout`` is given."""
DEFAULT_MAX_PENDING: Final = 1_000
"""Messages held for the host's reading threads before the consumer task stops taking."""
_STOP_TIMEOUT: Final = 5.0
_ENDED: Final = object()


class _Manager(Protocol):
    async def disconnect(self) -> None: ...


ManagerT = TypeVar("ManagerT", bound=_Manager)


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


async def _aclose(messages: AsyncIterator[Any]) -> None:
    aclose = getattr(messages, "aclose", None)
    if aclose is not None:
        await aclose()


async def _stop_throttler_actor(throttler: AsyncThrottler) -> None:
    # NetworkPype's default throttler is ours, but its actor outlives NetworkPype.stop() (it
    # lives until its loop ends, and the library's loop thread does not end); aclose() stops
    # it, and a later use would start a fresh actor that takes the state over.
    await throttler.aclose()


class _SyncFacade(Generic[ManagerT]):
    """The lifecycle, the loop thread, the commands' timeouts and the reading side; the
    ``NetworkPype`` and the manager (built by the subclass's ``_new_manager``) it drives."""

    _pype: NetworkPype | None = None

    def __init__(
        self,
        throttler: AsyncThrottler | None,
        auth: Auth | None,
        ws_pre_processors: list[WebSocketPreProcessor] | None,
        ws_post_processors: list[WebSocketPostProcessor] | None,
        *,
        decoder: DecoderSpec,
        max_msg_size: int,
        events: bool,
        max_pending: int,
        call_timeout: float,
        own_loop_thread: bool,
    ) -> None:
        if not call_timeout > 0:
            raise ConfigurationError(f"call_timeout must be > 0 s, got {call_timeout}")
        self._throttler = throttler
        self._auth = auth
        self._pre_processors = list(ws_pre_processors or [])
        self._post_processors = list(ws_post_processors or [])
        self._decoder = decoder
        self._max_msg_size = max_msg_size
        self._manager: ManagerT | None = None
        self._events = events
        self._max_pending = max_pending
        self._call_timeout = call_timeout
        self._owns_loop_thread = own_loop_thread
        self._lock = threading.Lock()  # start()/stop() transitions
        self._phase = _Phase.NEW
        self._loop_thread: LoopThread | None = None
        self._main = _HandOff(max_pending)
        self._reader = SyncStream(self._main)
        self._pumps: set[asyncio.Task[None]] = set()  # touched on the loop only
        # How reading ended (loop only): None while it goes on, else the error told last
        # (GaveUpError) or _ENDED.
        self._outcome: BaseException | object | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def loop_thread(self) -> LoopThread:
        """The loop thread the subsystem runs on (after ``start()``): schedule loop code on
        it with ``run_coroutine``."""
        if self._loop_thread is None:
            raise NotConnectedError(f"{type(self).__name__} is not started; call start()")
        return self._loop_thread

    def start(self, timeout: float | None = None) -> None:
        """Start (or reuse) the loop thread and build the subsystem on it. Idempotent.

        Raises ``NotConnectedError`` after ``stop()`` (make a new instance), ``TimeoutError``
        past ``timeout`` seconds, ``BlockingCallError`` on a thread running an event loop.
        """
        _refuse_on_a_loop("start")
        with self._lock:
            if self._phase is _Phase.RUNNING:
                return
            if self._phase is _Phase.STOPPED:
                raise NotConnectedError(
                    f"{type(self).__name__} was stopped; it cannot start again: make a new one"
                )
            if self._owns_loop_thread:
                loop_thread = LoopThread(name="networkpype-embedded")
                loop_thread.start()
            else:
                loop_thread = get_loop_thread()
            self._main.bind(loop_thread.loop)
            try:
                self._run(loop_thread, "start", self._build, timeout)
            except BaseException:
                if self._owns_loop_thread:
                    loop_thread.shutdown(_STOP_TIMEOUT)
                raise
            self._loop_thread = loop_thread
            self._phase = _Phase.RUNNING
            logger.debug("%s started on %s", type(self).__name__, loop_thread.name)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop reading, disconnect, stop every actor and task of this subsystem and close
        its HTTP session, within about ``timeout`` seconds (default 5), from any state
        (mid-handshake, mid-backoff, readers blocked in ``get()``). Idempotent.

        Readers get what was already queued, then None. The library's loop thread stays for
        reuse; a thread of our own (``own_loop_thread=True``) is shut down and joined. Raises
        ``TimeoutError`` if the subsystem did not stop in time (with ``own_loop_thread``
        what is left is then cancelled with the loop), ``BlockingCallError`` on a thread
        running an event loop.
        """
        _refuse_on_a_loop("stop")
        deadline = time.monotonic() + timeout
        with self._lock:
            phase, self._phase = self._phase, _Phase.STOPPED
            loop_thread = self._loop_thread
            try:
                if phase is _Phase.RUNNING and loop_thread is not None:
                    self._run(loop_thread, "stop", self._teardown, timeout)
                    logger.debug("%s stopped", type(self).__name__)
            except TimeoutError:
                logger.warning(
                    "%s did not stop within %.1f s; what is left is cancelled",
                    type(self).__name__,
                    timeout,
                )
                raise
            finally:
                for handoff in self._handoffs():
                    handoff.close()
                if self._owns_loop_thread and loop_thread is not None:
                    loop_thread.shutdown(max(0.1, deadline - time.monotonic()))

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

    # -- reading ---------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Any:
        """The next message, or None once stopped and drained: see :meth:`SyncStream.get`."""
        return self._reader.get(timeout)

    def get_nowait(self) -> Any:
        """The next message if one is waiting: see :meth:`SyncStream.get_nowait`."""
        return self._reader.get_nowait()

    def messages(self, timeout: float | None = None) -> Iterator[Any]:
        """Iterate over the messages until ``stop()``: see :meth:`SyncStream.messages`."""
        return self._reader.messages(timeout)

    # -- for subclasses --------------------------------------------------------------------

    async def _new_manager(self, pype: NetworkPype) -> ManagerT:
        raise NotImplementedError

    async def _build(self) -> None:
        pype = NetworkPype(self._throttler, self._auth, self._pre_processors, self._post_processors)
        try:
            manager = await self._new_manager(pype)
        except BaseException:
            await pype.stop()
            raise
        self._pype = pype
        self._manager = manager

    async def _new_connection(self, pype: NetworkPype) -> WebSocketConnection:
        # The factory makes connections on its shared session only inside a manager: take the
        # connection of a fresh, never connected one (the facade builds its own manager on it,
        # with its own options). The factory disconnects that one (a no-op) when the pype stops.
        factory = pype.factory
        return (
            await factory.get_ws_manager(decoder=self._decoder, max_msg_size=self._max_msg_size)
        ).connection

    async def _disconnect(self) -> None:
        if self._manager is not None:
            await self._manager.disconnect()

    def _handoffs(self) -> list[_HandOff]:
        return [self._main]

    async def _teardown(self) -> None:
        pumps = list(self._pumps)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        pype, self._pype = self._pype, None
        try:
            await self._disconnect()
        finally:
            if pype is not None:
                await pype.stop()
                if self._throttler is None:
                    await _stop_throttler_actor(pype.factory.throttler)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task owned by this facade (cancelled by ``stop()``)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)

    def _call(
        self, what: str, make: Callable[[], Coroutine[Any, Any, T]], timeout: float | None
    ) -> T:
        _refuse_on_a_loop(what)
        if self._phase is _Phase.NEW:
            self.start()
        loop_thread = self._loop_thread
        if self._phase is not _Phase.RUNNING or loop_thread is None:
            raise NotConnectedError(f"{what}(): {type(self).__name__} is stopped")
        return self._run(loop_thread, what, make, timeout)

    def _run(
        self,
        loop_thread: LoopThread,
        what: str,
        make: Callable[[], Coroutine[Any, Any, T]],
        timeout: float | None,
    ) -> T:
        seconds = self._call_timeout if timeout is None else timeout
        coro = make()
        try:
            future = loop_thread.run_coroutine(coro)
        except RuntimeError as error:  # the loop thread was shut down under us
            coro.close()
            raise NotConnectedError(f"{what}(): the event loop thread is shut down") from error
        done, _ = concurrent.futures.wait([future], None if seconds == math.inf else seconds)
        if not done:
            future.cancel()
            raise TimeoutError(f"{what}() took more than {seconds} s and was cancelled")
        return future.result()

    async def _pump_into(
        self,
        source: Callable[[], AsyncIterator[Any]],
        deliver: Callable[[Any], Awaitable[None]],
    ) -> None:
        """Take every item of ``source()`` (the manager's ``iter_messages``) and ``deliver``
        it until an iteration ends, then end every hand-off.

        An exception out of an iteration (a post-processor's, ``ConsumerOverflowError``,
        ``GaveUpError``, or ``deliver``'s own) goes to every hand-off once, in its place, and
        a new iteration goes on after it: the manager's iterator has consumed the message
        that raised, and ends after ``GaveUpError``. ``CancelledError`` (``stop()``) is not
        caught.
        """
        told: BaseException | None = None  # the error told since the last item, if any
        while True:
            try:
                messages = source()
                try:
                    async for item in messages:
                        told = None
                        await deliver(item)
                finally:
                    # Now, not when collected: the next iteration starts where this one ended.
                    await _aclose(messages)
            except Exception as error:
                if error is told:  # not consumed: it would come back forever
                    logger.warning(
                        "%s: the stream raised %r again; it ends", type(self).__name__, error
                    )
                    break
                told = error
                for handoff in self._handoffs():
                    await handoff.put_error(error)
                continue
            break
        self._outcome = _ENDED if told is None else told
        for handoff in self._handoffs():
            handoff.close()

    def _end_like_the_others(self, handoff: _HandOff) -> None:
        """A hand-off opened after reading ended ends the same way (loop only): the error
        told last (``GaveUpError``), once, then None."""
        if isinstance(self._outcome, BaseException):
            handoff.close(self._outcome)
        elif self._outcome is not None:
            handoff.close()
