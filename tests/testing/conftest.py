from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web


@dataclass
class EchoServer:
    """An aiohttp server on 127.0.0.1: WebSocket echo at /ws, plain text at /."""

    runner: web.AppRunner
    port: int


async def _echo(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def _hello(request: web.Request) -> web.StreamResponse:
    return web.Response(text="hello")


@pytest.fixture
async def echo_server() -> AsyncIterator[EchoServer]:
    app = web.Application()
    app.router.add_get("/ws", _echo)
    app.router.add_get("/", _hello)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield EchoServer(runner, port)
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
