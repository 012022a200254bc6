"""The demo server's state of one accepted WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from aiohttp import web

from networkpype.demo.statistics import DemoConnectionStatistics

__all__ = ["DemoConnection"]


class DemoConnection:
    """Server-side state of one accepted WebSocket; owns its stream tasks."""

    def __init__(
        self, connection_id: int, path: str, headers: Mapping[str, str], ws: web.WebSocketResponse
    ) -> None:
        self.connection_id = connection_id
        self.path = path
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers))
        self.ws = ws
        self.received = 0
        self.sent = 0
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.open = True

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)
        self.sent += 1

    async def stop_streams(self, topics: Sequence[str] | None = None) -> None:
        """Cancel the named streams (all when ``None``) and wait until they have ended."""
        names = list(self.streams) if topics is None else [t for t in topics if t in self.streams]
        tasks = [self.streams.pop(name) for name in names]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def snapshot(self) -> DemoConnectionStatistics:
        return DemoConnectionStatistics(
            connection_id=self.connection_id,
            path=self.path,
            handshake_headers=self.headers,
            messages_received=self.received,
            messages_sent=self.sent,
            subscriptions=tuple(self.streams),
            open=self.open,
        )
