"""``SyncNetworkPype``: one supervised WebSocket driven from synchronous code, and its
``SyncStatistics``.

Part of the blocking facades; import the public names from :mod:`networkpype.embedding`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgspec
from pykka import ActorRef

from networkpype._embedding._facade import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_MAX_PENDING,
    _SyncFacade,
)
from networkpype.facade import NetworkPype
from networkpype.protocol.errors import NotConnectedError
from networkpype.protocol.options import (
    DEFAULT_MAX_QUEUE,
    Overflow,
    keywords_of,
    options_or_keywords,
)
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.options import ManagerOptions
from networkpype.wire.connection import DEFAULT_MAX_MSG_SIZE
from networkpype.wire.decoding import DecoderSpec

if TYPE_CHECKING:
    from networkpype.actors.manager import OnConnect
    from networkpype.auth import Auth
    from networkpype.supervisor.policy import RestartPolicy
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.wire.processor import WebSocketPostProcessor, WebSocketPreProcessor
    from networkpype.wire.request import WebSocketRequest

__all__ = ["SyncNetworkPype", "SyncStatistics"]


class SyncStatistics(msgspec.Struct, frozen=True):
    """A snapshot of a :class:`SyncNetworkPype`. ``restarts``: reconnections so far;
    ``subscriptions``: recorded (replayed) ones; ``*_in``/``*_out``: frames and bytes of the
    current connection; ``last_recv_time``: Unix time of the last data frame (0.0 before any);
    ``pending``: messages waiting for the host's readers; ``delivered``: messages read."""

    connected: bool
    restarts: int
    subscriptions: int
    messages_in: int
    bytes_in: int
    messages_out: int
    bytes_out: int
    last_recv_time: float
    pending: int
    delivered: int


class SyncNetworkPype(_SyncFacade[WebSocketManager]):
    """One supervised WebSocket (a ``WebSocketManager``) driven from synchronous code.

    See the module docstring for threads, timeouts and reading. ``throttler``, ``auth`` and
    the processors are ``NetworkPype``'s; ``restart_policy``, ``on_connect``, ``on_escalate``
    and ``parent`` are ``WebSocketManager``'s supervision settings; ``decoder``,
    ``max_msg_size``, ``max_queue`` and ``overflow`` the manager's decoding and queue
    (``options=``, a ``ManagerOptions``, gives the manager's settings whole instead).
    ``events=True`` has ``get()`` return the lifecycle events too, in order with the data.
    ``max_pending`` bounds the messages held for the host's readers. ``call_timeout`` is the
    default timeout of the commands, in seconds.

    Usage: ``start()`` (or ``with``), ``connect(url)`` once, then ``subscribe``/``send``/
    ``get`` from any threads, and ``stop()``. An instance connects once; after ``stop()``
    make a new one.
    """

    def __init__(
        self,
        throttler: AsyncThrottler | None = None,
        auth: Auth | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        *,
        restart_policy: RestartPolicy | None = None,
        on_connect: OnConnect | None = None,
        on_escalate: EscalationHandler | None = None,
        parent: ActorRef[Any] | None = None,
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        overflow: Overflow = "block",
        events: bool = False,
        max_pending: int = DEFAULT_MAX_PENDING,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        own_loop_thread: bool = False,
        options: ManagerOptions | None = None,
    ) -> None:
        manager_options = options_or_keywords(
            "SyncNetworkPype()", options, ManagerOptions, keywords_of(ManagerOptions, locals())
        )
        super().__init__(
            throttler,
            auth,
            ws_pre_processors,
            ws_post_processors,
            decoder=decoder,
            max_msg_size=max_msg_size,
            events=events,
            max_pending=max_pending,
            call_timeout=call_timeout,
            own_loop_thread=own_loop_thread,
        )
        self._manager_options = manager_options

    @property
    def manager(self) -> WebSocketManager:
        """The ``WebSocketManager`` (after ``start()``), for loop code: its methods must be
        awaited on :attr:`loop_thread`."""
        if self._manager is None:
            raise NotConnectedError("SyncNetworkPype is not started; call start()")
        return self._manager

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open (False during a reconnection)."""
        return self._manager is not None and self._manager.connected

    async def _new_manager(self, pype: NetworkPype) -> WebSocketManager:
        return WebSocketManager(
            await self._new_connection(pype),
            self._pre_processors,
            self._post_processors,
            pype.factory.auth,
            throttler=pype.factory.throttler,
            options=self._manager_options,
        )

    def connect(self, url: str, *, timeout: float | None = None, **connect_kwargs: Any) -> None:
        """Open the WebSocket (``WebSocketManager.connect``'s keyword arguments: liveness
        settings, headers...) and start reading; starts the facade first if needed.

        Raises the handshake errors of the error tree (the first connection is not retried),
        ``AlreadyConnectedError`` the second time, ``TimeoutError`` past ``timeout`` seconds.
        ``retry=True`` retries the first connection as a reconnection would be (see
        ``WebSocketManager.connect``); then, unless ``timeout`` is given, the call waits as
        long as that takes (the restart policy bounds it: ``GaveUpError`` past its
        intensity), not ``call_timeout``; ``stop()`` from another thread ends the wait with
        ``ConnectAbortedError``.
        """
        if timeout is None and connect_kwargs.get("retry"):
            timeout = math.inf  # the restart policy is the bound, not call_timeout

        async def connect() -> None:
            manager = self.manager
            await manager.connect(url, **connect_kwargs)
            events = self._events
            self._spawn(
                self._pump_into(lambda: manager.iter_messages(events=events), self._main.put),
                "networkpype-sync-reader",
            )

        self._call("connect", connect, timeout)

    def subscribe(self, request: WebSocketRequest, *, timeout: float | None = None) -> None:
        """``WebSocketManager.subscribe``: send and record ``request`` (replayed after every
        reconnection). Returns once it is written; raises ``NotConnectedError`` before
        ``connect()``, ``TimeoutError`` past ``timeout`` seconds."""
        self._call("subscribe", lambda: self.manager.subscribe(request), timeout)

    def unsubscribe(
        self,
        subscription: WebSocketRequest,
        request: WebSocketRequest | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """``WebSocketManager.unsubscribe``: forget ``subscription`` (the object given to
        ``subscribe``) and send ``request`` when given. Raises ``KeyError`` for an unknown
        subscription, ``TimeoutError`` past ``timeout`` seconds."""
        self._call("unsubscribe", lambda: self.manager.unsubscribe(subscription, request), timeout)

    def send(self, request: WebSocketRequest, *, timeout: float | None = None) -> None:
        """``WebSocketManager.send``: pre-process, sign, throttle and send ``request`` (not
        recorded). Raises ``NotConnectedError`` while the connection is down, ``TimeoutError``
        past ``timeout`` seconds (a throttled send may wait for its rate limit)."""
        self._call("send", lambda: self.manager.send(request), timeout)

    def subscriptions(self, *, timeout: float | None = None) -> list[WebSocketRequest]:
        """The recorded subscriptions, in replay order."""
        return self._call("subscriptions", lambda: self.manager.subscriptions(), timeout)

    def statistics(self, *, timeout: float | None = None) -> SyncStatistics:
        """A :class:`SyncStatistics` snapshot, taken on the loop."""

        async def snapshot() -> SyncStatistics:
            manager = self.manager
            actor = manager.actor_ref
            restarts, subscriptions = (await actor.proxy().status()) if actor else (0, 0)
            connection = manager.connection
            return SyncStatistics(
                connected=connection.connected,
                restarts=restarts,
                subscriptions=subscriptions,
                messages_in=connection.messages_in,
                bytes_in=connection.bytes_in,
                messages_out=connection.messages_out,
                bytes_out=connection.bytes_out,
                last_recv_time=connection.last_recv_time,
                pending=len(self._main),
                delivered=self._main.delivered,
            )

        return self._call("statistics", snapshot, timeout)
