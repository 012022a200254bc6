"""The rest of the NetworkPype 1.1.5 surface (issue 13, part 1): each name with the seed's
signature and behaviour, against real loopback servers where it sends anything."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

import networkpype.throttler.context as context_module
from networkpype.factory import ConnectionManagersFactory, ConnectionsFactory
from networkpype.testing.scripted import ScriptedServer
from networkpype.throttler.context import AsyncRequestContext
from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit, TaskLog
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.time_synchronizer import TimeSynchronizer
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.websocket.request import (
    WebSocketJSONRequest,
    WebSocketPlainTextRequest,
    WebSocketRequest,
)
from networkpype.websocket.response import WebSocketResponse

# -- throttling -------------------------------------------------------------------------------


def limits() -> list[RateLimit]:
    return [
        RateLimit("global", 10, 1.0),
        RateLimit("orders", 2, 0.2, weight=1, linked_limits=[LinkedLimitWeightPair("global", 3)]),
    ]


def test_filter_rate_limits_list_keeps_the_others_in_order() -> None:
    declared = [RateLimit("a", 1, 1.0), RateLimit("b", 1, 1.0), RateLimit("c", 1, 1.0)]
    kept = RateLimit.filter_rate_limits_list(declared, ["b"])
    assert [limit.limit_id for limit in kept] == ["a", "c"]
    assert RateLimit.filter_rate_limits_list(declared, set()) == declared


def test_get_related_limits_gives_the_limit_then_each_linked_one_with_its_weight() -> None:
    throttler = AsyncThrottler(limits())
    own, related = throttler.get_related_limits("orders")
    assert own is not None and own.limit_id == "orders"
    assert [(limit.limit_id, weight) for limit, weight in related] == [
        ("orders", 1),
        ("global", 3),
    ]
    assert throttler.get_related_limits("nope") == (None, [])


def test_get_related_limits_gives_the_limits_in_effect_under_a_share() -> None:
    """As NetworkPype: with ``limits_share_percentage`` the limits are this throttler's part
    (floored, never below 1 for a positive limit; the safety margin is not applied)."""
    declared = [
        RateLimit("global", 10, 1.0),
        RateLimit("orders", 3, 0.2, weight=2, linked_limits=[LinkedLimitWeightPair("global", 3)]),
    ]
    throttler = AsyncThrottler(declared, limits_share_percentage=Decimal(50))
    own, related = throttler.get_related_limits("orders")
    assert own is not None and (own.limit_id, own.limit, own.weight) == ("orders", 1, 2)
    assert [(limit.limit_id, limit.limit, weight) for limit, weight in related] == [
        ("orders", 1, 2),
        ("global", 5, 3),
    ]
    assert [limit.limit for limit in throttler.rate_limits] == [10, 3]  # declared, unchanged
    throttler.limits_share_percentage = None
    assert [limit.limit for limit, _ in throttler.get_related_limits("orders")[1]] == [3, 10]


def test_logger_classmethods_give_one_module_logger_each() -> None:
    for owner in (AsyncThrottler, AsyncRequestContext, TimeSynchronizer, WebSocketConnection):
        got = owner.logger()
        assert isinstance(got, logging.Logger)
        assert got is owner.logger()
        assert got.name.startswith("networkpype.")


async def test_execute_task_returns_an_async_request_context() -> None:
    throttler = AsyncThrottler(limits())
    context = throttler.execute_task("orders")
    assert isinstance(context, AsyncRequestContext)
    assert AsyncRequestContext.MAX_CAPACITY_REACHED_WARNING_INTERVAL == 30.0
    assert context.within_capacity()
    log = await context.acquire()  # one use recorded: the seed's acquire()
    assert isinstance(log, TaskLog) and log.rate_limit.limit_id == "orders"
    async with throttler.execute_task("orders") as second:
        assert isinstance(second, TaskLog)
    assert not throttler.execute_task("orders").within_capacity()  # 2 per 0.2 s: full
    assert throttler.execute_task("global").within_capacity()  # 6 of 10 (9 effective) used
    await throttler.aclose()


async def test_flush_forgets_uses_whose_window_passed() -> None:
    now = [0.0]
    throttler = AsyncThrottler([RateLimit("x", 1, 1.0)], clock=lambda: now[0])
    context = throttler.execute_task("x")
    await context.acquire()
    assert len(throttler._core.task_logs()) == 1 and not context.within_capacity()
    now[0] = 0.5
    context.flush()
    assert len(throttler._core.task_logs()) == 1  # still inside its window
    now[0] = 1.0
    context.flush()
    assert throttler._core.task_logs() == [] and context.within_capacity()
    await throttler.aclose()


async def test_a_wait_for_capacity_is_warned_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module.AsyncRequestContext, "_last_warning", {})
    caplog.set_level(logging.WARNING, logger="networkpype.throttler.context")
    throttler = AsyncThrottler([RateLimit("tight", 1, 0.02)], safety_margin_pct=0.0)
    for _ in range(4):  # the first starts at once, the next three wait 20 ms each
        async with throttler.execute_task("tight"):
            pass
    warnings = [r for r in caplog.records if "'tight'" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert "at capacity" in warnings[0].getMessage()
    await throttler.aclose()


# -- requests that say how they go out ----------------------------------------------------------


@dataclass
class Envelope(WebSocketRequest):
    """A user's own request class, written the NetworkPype way: only send_with_connection."""

    async def send_with_connection(self, connection: WebSocketConnection) -> None:
        await connection._send_json({"op": "wrapped", "args": self.payload})
        await connection._send_plain_text("END")


def test_request_classes_have_class_level_defaults() -> None:
    for cls in (WebSocketJSONRequest, WebSocketPlainTextRequest):
        assert vars(cls)["is_auth_required"] is False
        assert vars(cls)["throttler_limit_id"] is None


async def test_send_with_connection_of_the_library_requests(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await WebSocketJSONRequest(payload={"a": 1}).send_with_connection(conn)
    await WebSocketPlainTextRequest(payload="PING").send_with_connection(conn)
    assert await peer.wait_frames(2) == ['{"a":1}', "PING"]
    await conn.disconnect()


async def test_a_connection_sends_a_user_request_class_through_its_method(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    await conn.send(Envelope(payload=[1, 2]))
    frames = await peer.wait_frames(2)
    assert json.loads(frames[0]) == {"op": "wrapped", "args": [1, 2]} and frames[1] == "END"
    await conn.disconnect()


async def test_a_manager_sends_and_replays_a_user_request_class_through_its_method(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    ws = WebSocketManager(WebSocketConnection(session))
    await ws.connect(server.url)
    first = await server.wait_peer()
    await ws.subscribe(Envelope(payload="btcusdt"))
    await ws.send(Envelope(payload="once"))
    assert len(await first.wait_frames(4)) == 4
    first.abort()  # the subscription is replayed through the same method
    second = await server.wait_peer(1)
    frames = await second.wait_frames(2)
    assert json.loads(frames[0]) == {"op": "wrapped", "args": "btcusdt"} and frames[1] == "END"
    await ws.disconnect()


async def test_a_manager_takes_networkpypes_positional_arguments(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    # NetworkPype: WebSocketManager(connection, ws_pre_processors, ws_post_processors, auth).
    class Tag(WebSocketPreProcessor):
        async def pre_process(self, request: WebSocketRequest) -> WebSocketRequest:
            assert isinstance(request, WebSocketJSONRequest)
            request.payload = {**request.payload, "tagged": True}
            return request

    class Upper(WebSocketPostProcessor):
        async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
            response.data = str(response.data).upper()
            return response

    ws = WebSocketManager(WebSocketConnection(session), [Tag()], [Upper()], None)
    await ws.connect(server.url)
    peer = await server.wait_peer()
    await ws.send(WebSocketJSONRequest(payload={"op": "ping"}))
    assert json.loads((await peer.wait_frames(1))[0]) == {"op": "ping", "tagged": True}
    await peer.ws.send_str("pong")
    received = await asyncio.wait_for(ws.receive(), 5)
    assert received is not None and received.data == "PONG"
    await ws.disconnect()


async def test_a_request_class_that_says_nothing_is_a_clear_error(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    @dataclass
    class Mute(WebSocketRequest):
        pass

    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    with pytest.raises(NotImplementedError, match="Mute defines neither"):
        await conn.send(Mute(payload=None))
    await conn.disconnect()


# -- the factory --------------------------------------------------------------------------------


async def cookie_server() -> tuple[web.AppRunner, str]:
    async def echo_cookies(request: web.Request) -> web.Response:
        return web.json_response(dict(request.cookies))

    app = web.Application()
    app.router.add_get("/cookies", echo_cookies)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/cookies"


async def test_update_cookies_is_a_coroutine_as_in_networkpype() -> None:
    runner, url = await cookie_server()
    try:
        factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("api", 10, 1)]))
        await factory.update_cookies({"session": "abc"})  # the guide's call
        rest = await factory.get_rest_manager()
        assert await rest.execute_request(url, "api") == {"session": "abc"}
        await factory.close()
        connections = ConnectionsFactory()
        await connections.update_cookies({"other": "x"})
        await connections.close()
    finally:
        await runner.cleanup()
