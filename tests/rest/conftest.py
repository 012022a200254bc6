"""A real aiohttp server on 127.0.0.1 (a free port) that scripts the answers REST tests need."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

SERVER_AHEAD_S = 10.0  # the scripted server's clock runs this far ahead of ours


@dataclass
class Script:
    """What the server saw, for assertions."""

    seen: list[web.Request] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    time_calls: int = 0


async def describe(request: web.Request) -> dict[str, object]:
    return {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "content_type": request.headers.get("Content-Type"),
        "headers": dict(request.headers),
        "body": await request.text(),
    }


def make_app(script: Script) -> web.Application:
    async def record(request: web.Request) -> None:
        script.seen.append(request)
        script.bodies.append(await request.text())

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response(await describe(request))

    async def status(request: web.Request) -> web.Response:
        await record(request)
        code = int(request.match_info["code"])
        headers = {"Retry-After": "3"} if code == 429 else {}
        return web.json_response({"code": code, "msg": "scripted"}, status=code, headers=headers)

    async def text_status(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="plain failure", status=int(request.match_info["code"]))

    async def not_json(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async def json_as_text(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text='{"a": 1}', content_type="text/plain")

    async def empty(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=204)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.Event().wait()  # never answers; the client's timeout ends the request
        return web.json_response({})

    async def server_time(request: web.Request) -> web.Response:
        script.time_calls += 1
        await asyncio.sleep(0.01)
        return web.json_response({"serverTime": (time.time() + SERVER_AHEAD_S) * 1e3})

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/text-status/{code}", text_status)
    app.router.add_get("/not-json", not_json)
    app.router.add_get("/json-as-text", json_as_text)
    app.router.add_get("/empty", empty)
    app.router.add_get("/slow", slow)
    app.router.add_get("/time", server_time)
    return app


@dataclass
class Server:
    script: Script
    base: str

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    script = Script()
    test_server = TestServer(make_app(script), host="127.0.0.1", port=0)
    await test_server.start_server()
    try:
        yield Server(script, str(test_server.make_url("")).rstrip("/"))
    finally:
        await test_server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session
