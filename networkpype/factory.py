"""Factories: one shared ``aiohttp.ClientSession`` and the managers built on it.

``ConnectionManagersFactory`` is the seed's entry point: it holds the throttler, auth and
processors and hands out ``WebSocketManager`` and ``RESTManager`` objects that share one
session. The session's connector has no connection cap (aiohttp's default stops at 100
concurrent connections, and every open WebSocket holds one), so hundreds of WebSocket
connections can be open at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec

from networkpype.protocol.options import (
    DEFAULT_MAX_QUEUE,
    OnGaveUp,
    Overflow,
    keywords_of,
    options_or_keywords,
)
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.options import ManagerOptions, ShardedOptions
from networkpype.websocket.sharded import ShardedWebSocketManager
from networkpype.wire.connection import DEFAULT_MAX_MSG_SIZE, WebSocketConnection
from networkpype.wire.decoding import DecoderSpec, make_decoder
from networkpype.wire.processor import WebSocketPostProcessor, WebSocketPreProcessor

if TYPE_CHECKING:
    from http.cookies import SimpleCookie

    from pykka import ActorRef

    from networkpype.actors.manager import OnConnect
    from networkpype.auth import Auth
    from networkpype.rest.connection import RESTConnection
    from networkpype.rest.manager import RESTManager
    from networkpype.rest.processor.base import RESTPostProcessor, RESTPreProcessor
    from networkpype.supervisor.policy import RestartPolicy
    from networkpype.supervisor.supervisor import EscalationHandler
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.time_synchronizer import TimeSynchronizer
    from networkpype.websocket.codec import TopicCodec

__all__ = ["ConnectionManagersFactory", "ConnectionsFactory"]


class ConnectionsFactory:
    """Makes connections on one shared ``aiohttp.ClientSession``, created on first use.

    Keyword arguments of the first ``get_*_connection`` call go to ``aiohttp.ClientSession``;
    unless they include a ``connector``, the session gets a ``TCPConnector(limit=0)``.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._cookies: Any = None

    async def _get_session(self, **session_kwargs: Any) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            if "connector" not in session_kwargs:
                session_kwargs["connector"] = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(**session_kwargs)
            if self._cookies is not None:
                self._session.cookie_jar.update_cookies(self._cookies)
        return self._session

    async def get_ws_connection(
        self,
        *,
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        handshake_timeout: float | None = 10.0,
        **session_kwargs: Any,
    ) -> WebSocketConnection:
        """A new ``WebSocketConnection`` on the shared session."""
        session = await self._get_session(**session_kwargs)
        return WebSocketConnection(
            session,
            decoder=decoder,
            max_msg_size=max_msg_size,
            handshake_timeout=handshake_timeout,
        )

    async def get_rest_connection(self, **session_kwargs: Any) -> RESTConnection:
        """A ``RESTConnection`` on the shared session."""
        from networkpype.rest.connection import RESTConnection

        return RESTConnection(await self._get_session(**session_kwargs))

    async def update_cookies(self, cookies: SimpleCookie | dict[str, str]) -> None:
        """Cookies for every later request of the shared session (a coroutine, as
        NetworkPype's)."""
        self._cookies = cookies
        if self._session is not None:
            self._session.cookie_jar.update_cookies(cookies)

    async def close(self) -> None:
        """Close the shared session (its open connections close too). Idempotent."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


class ConnectionManagersFactory:
    """Builds managers that share a throttler, auth, processors and one HTTP session."""

    def __init__(
        self,
        throttler: AsyncThrottler,
        auth: Auth | None = None,
        rest_pre_processors: list[RESTPreProcessor] | None = None,
        rest_post_processors: list[RESTPostProcessor] | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        time_synchronizer: TimeSynchronizer | None = None,
    ) -> None:
        self._throttler = throttler
        self._auth = auth
        self._rest_pre_processors = list(rest_pre_processors or [])
        self._rest_post_processors = list(rest_post_processors or [])
        self._ws_pre_processors = list(ws_pre_processors or [])
        self._ws_post_processors = list(ws_post_processors or [])
        self._time_synchronizer = time_synchronizer
        self._connections_factory = ConnectionsFactory()
        # Managers with something to close (connected and not yet disconnected): each adds
        # itself at connect() and leaves at disconnect(), so none is kept after its use.
        self._live: set[WebSocketManager | ShardedWebSocketManager] = set()

    @property
    def throttler(self) -> AsyncThrottler:
        return self._throttler

    @property
    def auth(self) -> Auth | None:
        return self._auth

    @property
    def time_synchronizer(self) -> TimeSynchronizer | None:
        return self._time_synchronizer

    async def get_ws_manager(
        self,
        *,
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        max_queue: int = DEFAULT_MAX_QUEUE,
        overflow: Overflow = "block",
        handshake_timeout: float | None = 10.0,
        restart_policy: RestartPolicy | None = None,
        on_connect: OnConnect | None = None,
        on_escalate: EscalationHandler | None = None,
        parent: ActorRef[Any] | None = None,
        options: ManagerOptions | None = None,
        **session_kwargs: Any,
    ) -> WebSocketManager:
        """A new ``WebSocketManager`` with this factory's throttler, auth and processors.

        ``decoder`` (see ``networkpype.wire.decoding``), ``max_msg_size`` (bytes),
        ``max_queue`` (messages buffered towards the consumer) and ``overflow`` (``"block"``,
        ``"drop_oldest"`` or ``"error"`` when it is full), ``handshake_timeout`` (seconds) and
        the supervision settings ``restart_policy``, ``on_connect`` and ``on_escalate`` (see
        ``WebSocketManager``) are per manager; other keyword
        arguments configure the shared ``aiohttp.ClientSession`` when it is first created.
        The manager's settings may be given whole as ``options=`` (a ``ManagerOptions``)
        instead of keywords.
        """
        options = options_or_keywords(
            "get_ws_manager()", options, ManagerOptions, keywords_of(ManagerOptions, locals())
        )
        connection = await self._connections_factory.get_ws_connection(
            decoder=decoder,
            max_msg_size=max_msg_size,
            handshake_timeout=handshake_timeout,
            **session_kwargs,
        )
        manager = WebSocketManager(
            connection,
            self._ws_pre_processors,
            self._ws_post_processors,
            self._auth,
            throttler=self._throttler,
            options=options,
        )
        manager._live_registry = self._live
        return manager

    async def get_sharded_ws_manager(
        self,
        *,
        codec: TopicCodec | None = None,
        max_topics_per_connection: int = 200,
        min_send_interval: float | None = None,
        max_connection_attempts: tuple[int, float] | None = None,
        restart_policy: RestartPolicy | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        overflow: Overflow = "block",
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        max_age: float | None = None,
        rotation_stagger: float = 0.1,
        rotation_overlap: float = 1.0,
        dedup_key: Callable[[Any], Hashable] | None = None,
        stats_interval: float | None = None,
        on_escalate: EscalationHandler | None = None,
        parent: ActorRef[Any] | None = None,
        on_shard_gave_up: OnGaveUp = "continue",
        options: ShardedOptions | None = None,
        **session_kwargs: Any,
    ) -> ShardedWebSocketManager:
        """Opt-in: a manager that spreads topic subscriptions over as many connections as
        ``max_topics_per_connection`` requires (see ``networkpype.websocket.sharded``).

        Give the venue's own numbers; the margins are the library's. For Binance spot:
        ``max_topics_per_connection=1024, min_send_interval=0.2,
        max_connection_attempts=(300, 300.0), max_age=24 * 3600`` (5 frames a second per
        connection, pings and pongs included; 300 attempts per 5 minutes; connections
        rotated so as to be replaced before the venue ends them at 24 h). ``dedup_key(data)``
        removes the messages both connections deliver around a rotation.
        ``on_shard_gave_up``: ``"continue"`` (the others go on) or ``"stop"`` (everything ends
        with the ``GaveUpError``) when a shard's supervisor gives up. The manager's settings
        may be given whole as ``options=`` (a ``ShardedOptions``, which also has
        ``ack_timeout``) instead of keywords; ``max_msg_size`` and the session's keywords
        stay keywords.
        """
        options = options_or_keywords(
            "get_sharded_ws_manager()",
            options,
            ShardedOptions,
            keywords_of(ShardedOptions, locals()),
        )
        # One decoder for every shard (decoders are stateless): a connection costs less.
        shared = make_decoder(options.decoder)

        async def connection() -> WebSocketConnection:
            return await self._connections_factory.get_ws_connection(
                decoder=shared, max_msg_size=max_msg_size, **session_kwargs
            )

        manager = ShardedWebSocketManager(
            connection,
            self._throttler,
            self._ws_pre_processors,
            self._ws_post_processors,
            self._auth,
            options=msgspec.structs.replace(options, decoder=shared),
        )
        manager._live_registry = self._live
        return manager

    async def get_rest_manager(self) -> RESTManager:
        """A ``RESTManager`` with this factory's throttler, auth and REST processors."""
        from networkpype.rest.manager import RESTManager

        connection = await self._connections_factory.get_rest_connection()
        return RESTManager(
            connection,
            self._throttler,
            rest_pre_processors=self._rest_pre_processors,
            rest_post_processors=self._rest_post_processors,
            auth=self._auth,
        )

    async def update_cookies(self, cookies: SimpleCookie | dict[str, str]) -> None:
        """Cookies for every later request of the shared session (a coroutine, as
        NetworkPype's)."""
        await self._connections_factory.update_cookies(cookies)

    async def close(self) -> None:
        """Disconnect every manager this factory made that is connected, then close the shared
        session. (A manager is held here only while connected.)"""
        while self._live:
            await self._live.pop().disconnect()
        await self._connections_factory.close()
