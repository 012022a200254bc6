"""``NetworkPype``: the card's facade, one object a host program starts and stops.

It builds the ``ConnectionManagersFactory`` (with its throttler, auth and processors) and
exposes ``ws_manager``: the same ``WebSocketManager`` API that ``factory.get_ws_manager()``
returns. Use it as an async context manager::

    async with NetworkPype(throttler=AsyncThrottler([...])) as pype:
        await pype.ws_manager.connect(url)
        await pype.ws_manager.subscribe(request)
        async for message in pype.ws_manager.iter_messages():
            ...

``stop()`` disconnects every manager it made and closes the shared HTTP session.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from networkpype.factory import ConnectionManagersFactory
from networkpype.limits.rate_limit import RateLimit
from networkpype.protocol.errors import NotConnectedError
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.wire.processor import (
        WebSocketPostProcessor,
        WebSocketPreProcessor,
    )

__all__ = ["NetworkPype"]

_DEFAULT_LIMITS = [RateLimit(limit_id="default", limit=10, time_interval=1.0)]


class NetworkPype:
    """The supervised WebSocket subsystem a host program starts and stops.

    ``throttler`` defaults to one limit ``"default"`` of 10 per second. ``ws_manager_kwargs``
    go to ``get_ws_manager()`` (``decoder``, ``max_msg_size``, ``max_queue``..., or
    ``options=``, a ``ManagerOptions``).
    """

    def __init__(
        self,
        throttler: AsyncThrottler | None = None,
        auth: Auth | None = None,
        ws_pre_processors: list[WebSocketPreProcessor] | None = None,
        ws_post_processors: list[WebSocketPostProcessor] | None = None,
        **ws_manager_kwargs: Any,
    ) -> None:
        self._own_throttler = throttler is None  # made here: closed by stop()
        self.factory = ConnectionManagersFactory(
            throttler=throttler or AsyncThrottler(_DEFAULT_LIMITS),
            auth=auth,
            ws_pre_processors=ws_pre_processors,
            ws_post_processors=ws_post_processors,
        )
        self._ws_manager_kwargs = ws_manager_kwargs
        self._ws_manager: WebSocketManager | None = None

    @property
    def ws_manager(self) -> WebSocketManager:
        """The subsystem's ``WebSocketManager``; available between ``start()`` and ``stop()``."""
        if self._ws_manager is None:
            raise NotConnectedError("NetworkPype is not started; await start() first")
        return self._ws_manager

    @property
    def started(self) -> bool:
        return self._ws_manager is not None

    async def start(self) -> None:
        """Create the manager. Idempotent."""
        if self._ws_manager is None:
            self._ws_manager = await self.factory.get_ws_manager(**self._ws_manager_kwargs)

    async def stop(self) -> None:
        """Disconnect everything and close the HTTP session. Idempotent."""
        self._ws_manager = None
        await self.factory.close()
        if self._own_throttler:
            await self.factory.throttler.aclose()

    async def __aenter__(self) -> NetworkPype:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
