"""WebSocketManager through the actors, against real loopback servers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from networkpype.auth import Auth
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import (
    ConfigurationError,
    MessageTimeoutError,
    NotConnectedError,
)
from networkpype.rest.request import RESTRequest
from networkpype.testing.scripted import ScriptedServer
from networkpype.throttler.rate_limit import LinkedLimitWeightPair, RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.websocket.request import (
    WebSocketJSONRequest,
    WebSocketPlainTextRequest,
    WebSocketRequest,
)
from networkpype.websocket.response import WebSocketResponse
from tests.timing import MS


def throttler(*limits: RateLimit) -> AsyncThrottler:
    return AsyncThrottler(rate_limits=list(limits) or [RateLimit("default", 100, 1.0)])


class AddTimestamp(WebSocketPreProcessor):
    async def pre_process(self, request: WebSocketRequest) -> WebSocketRequest:
        if isinstance(request.payload, dict):
            request.payload["timestamp"] = 1234567890
        return request


class Tag(WebSocketPreProcessor):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    async def pre_process(self, request: WebSocketRequest) -> WebSocketRequest:
        request.payload.setdefault("order", []).append(self.tag)
        return request


class FilterHeartbeats(WebSocketPostProcessor):
    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if isinstance(response.data, dict) and response.data.get("type") == "ping":
            response.data = None
        return response


class Upper(WebSocketPostProcessor):
    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if isinstance(response.data, str):
            response.data = response.data.upper()
        return response


class Exclaim(WebSocketPostProcessor):
    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if isinstance(response.data, str):
            response.data += "!"
        return response


class HmacAuth(Auth):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        return request

    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        self.calls += 1
        stamp = f"{time.time_ns()}-{self.calls}"
        request.payload["ts"] = stamp
        request.payload["sig"] = hmac.new(b"secret", stamp.encode(), hashlib.sha256).hexdigest()
        return request


async def test_seed_manager_snippet_subscribe_and_iter(echo_server: ScriptedServer) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws_manager = await factory.get_ws_manager()
    await ws_manager.connect(echo_server.url)
    request = WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": ["btcusdt@trade"]})
    await ws_manager.subscribe(request)
    await ws_manager.send(WebSocketPlainTextRequest(payload="PING"))
    got: list[Any] = []
    async for message in ws_manager.iter_messages():
        got.append(message.data)
        if len(got) == 2:
            break
    assert got == [{"method": "SUBSCRIBE", "params": ["btcusdt@trade"]}, "PING"]
    assert ws_manager.connected
    await factory.close()
    assert not ws_manager.connected


async def test_pre_processors_in_order_and_caller_request_untouched(
    echo_server: ScriptedServer,
) -> None:
    factory = ConnectionManagersFactory(
        throttler=throttler(), ws_pre_processors=[AddTimestamp(), Tag("a"), Tag("b")]
    )
    ws = await factory.get_ws_manager()
    await ws.connect(echo_server.url)
    request = WebSocketJSONRequest(payload={"type": "subscribe"})
    await ws.send(request)
    response = await ws.receive()
    assert response is not None
    assert response.data == {"type": "subscribe", "timestamp": 1234567890, "order": ["a", "b"]}
    assert request.payload == {"type": "subscribe"}
    await factory.close()


async def test_post_processors_in_order_and_none_signals_ignore(
    echo_server: ScriptedServer,
) -> None:
    factory = ConnectionManagersFactory(
        throttler=throttler(), ws_post_processors=[FilterHeartbeats(), Upper(), Exclaim()]
    )
    ws = await factory.get_ws_manager()
    await ws.connect(echo_server.url)
    await ws.send(WebSocketJSONRequest(payload={"type": "ping"}))
    await ws.send(WebSocketPlainTextRequest(payload="abc"))
    first, second = await ws.receive(), await ws.receive()
    assert first is not None and first.data is None
    assert second is not None and second.data == "ABC!"
    await factory.close()


async def test_auth_only_when_required_and_never_on_callers_object(
    echo_server: ScriptedServer,
) -> None:
    auth = HmacAuth()
    factory = ConnectionManagersFactory(throttler=throttler(), auth=auth)
    ws = await factory.get_ws_manager()
    await ws.connect(echo_server.url)
    private = WebSocketJSONRequest(payload={"op": "login"}, is_auth_required=True)
    public = WebSocketJSONRequest(payload={"op": "public"})
    await ws.send(private)
    await ws.send(public)
    await ws.send(private)
    signed1, plain, signed2 = [(await ws.receive()).data for _ in range(3)]  # type: ignore[union-attr]
    assert "sig" in signed1 and "sig" not in plain and plain == {"op": "public"}
    assert signed1["ts"] != signed2["ts"] and signed1["sig"] != signed2["sig"]
    assert private.payload == {"op": "login"}
    assert auth.calls == 2
    await factory.close()


async def test_auth_required_without_auth_is_configuration_error(
    echo_server: ScriptedServer,
) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(echo_server.url)
    with pytest.raises(ConfigurationError, match="Auth"):
        await ws.send(WebSocketJSONRequest(payload={}, is_auth_required=True))
    await factory.close()


async def test_send_before_connect_is_an_error() -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    with pytest.raises(NotConnectedError):
        await ws.send(WebSocketPlainTextRequest(payload="x"))
    assert await ws.receive() is None
    await factory.close()


async def test_throttled_sends_are_spaced_at_the_server(server: ScriptedServer) -> None:
    # 2 per 0.2 s (safety margin 0): 6 sends need at least two further windows.
    limit = RateLimit("ws", limit=2, time_interval=0.2)
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([limit], safety_margin_pct=0.0))
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    for i in range(6):
        await ws.send(WebSocketJSONRequest(payload={"i": i}, throttler_limit_id="ws"))
    peer = await server.wait_peer()
    await peer.wait_frames(6)
    arrivals = [t for t, _, _ in peer.received]
    assert [json.loads(d)["i"] for d in peer.texts()] == list(range(6))
    # Server-side: any 3 consecutive arrivals span at least one interval (with tolerance).
    for a, c in zip(arrivals, arrivals[2:], strict=False):
        assert c - a >= 0.2 - 0.02
    await factory.close()


async def test_linked_limit_spaces_sends_of_two_ids(server: ScriptedServer) -> None:
    limits = [
        RateLimit("global", limit=2, time_interval=0.2),
        RateLimit(
            "a", limit=100, time_interval=0.2, linked_limits=[LinkedLimitWeightPair("global")]
        ),
        RateLimit(
            "b", limit=100, time_interval=0.2, linked_limits=[LinkedLimitWeightPair("global")]
        ),
    ]
    factory = ConnectionManagersFactory(throttler=AsyncThrottler(limits, safety_margin_pct=0.0))
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    for i in range(4):
        await ws.send(WebSocketJSONRequest(payload={"i": i}, throttler_limit_id="ab"[i % 2]))
    peer = await server.wait_peer()
    await peer.wait_frames(4)
    arrivals = [t for t, _, _ in peer.received]
    assert arrivals[2] - arrivals[0] >= 0.2 - 0.02
    await factory.close()


async def test_unknown_limit_id_is_immediate_clear_error(echo_server: ScriptedServer) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(echo_server.url)
    with pytest.raises(KeyError, match="nope"):
        await asyncio.wait_for(
            ws.send(WebSocketJSONRequest(payload={}, throttler_limit_id="nope")), 1.0
        )
    await factory.close()


async def test_server_close_is_a_gap_between_queued_messages_and_reconnection(
    server: ScriptedServer,
) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    peer = await server.wait_peer()
    for i in range(3):
        await peer.ws.send_str(str(i))
    await peer.ws.close(code=1011, message=b"restart")
    second = await server.wait_peer(1)
    await second.ws.send_str("3")
    got: list[Any] = []
    async for item in ws.iter_messages(events=True):
        got.append(item)
        if len(got) == 7:
            break
    assert [type(e).__name__ for e in got] == [
        "Connected", "WebSocketResponse", "WebSocketResponse", "WebSocketResponse",
        "Disconnected", "Reconnected", "WebSocketResponse",
    ]  # fmt: skip
    assert [e.data for e in got if isinstance(e, WebSocketResponse)] == [0, 1, 2, 3]
    assert got[4].code == 1011
    assert got[5].downtime >= 0
    await factory.close()


async def test_message_timeout_through_manager(server: ScriptedServer) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(server.url, message_timeout=0.05)
    with pytest.raises(TimeoutError) as info:
        await ws.receive()
    assert isinstance(info.value, MessageTimeoutError)
    peer = await server.wait_peer()
    await peer.ws.send_str('{"ok": true}')
    response = await ws.receive()
    assert response is not None and response.data == {"ok": True}
    await factory.close()


async def test_ping_and_last_recv_time_and_disconnect_idempotent(server: ScriptedServer) -> None:
    server.autoping = False
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(server.url, ws_headers={"X-Seed": "yes"})
    peer = await server.wait_peer()
    assert peer.headers["X-Seed"] == "yes"
    await ws.ping()
    await peer.wait_frames(1)
    before = time.time()
    await peer.ws.send_str("x")
    await ws.receive()
    assert ws.last_recv_time >= before
    await ws.disconnect()
    await ws.disconnect()
    assert await ws.receive() is None
    await factory.close()


async def test_disconnect_wakes_a_waiting_consumer(server: ScriptedServer) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)

    async def consume() -> list[Any]:
        return [m.data async for m in ws.iter_messages()]

    task = asyncio.create_task(consume())
    await asyncio.sleep(10 * MS)  # the consumer waits
    await ws.disconnect()
    assert await asyncio.wait_for(task, 1.0) == []
    await factory.close()


async def test_factory_opens_150_connections_at_once(echo_server: ScriptedServer) -> None:
    factory = ConnectionManagersFactory(throttler=throttler())
    managers = [await factory.get_ws_manager() for _ in range(150)]
    await asyncio.wait_for(asyncio.gather(*(m.connect(echo_server.url) for m in managers)), 20)
    assert all(m.connected for m in managers)
    assert len(echo_server.peers) == 150
    await factory.close()


async def test_manager_ping_timeout_replaces_a_link_that_stops_answering(
    server: ScriptedServer,
) -> None:
    # Under the manager, ping_timeout is both the ping interval and the pong timeout.
    from networkpype.protocol.events import Disconnected

    server.autoping = False
    factory = ConnectionManagersFactory(throttler=throttler())
    ws = await factory.get_ws_manager()
    await ws.connect(server.url, ping_timeout=0.1)
    event = await asyncio.wait_for(ws.receive(events=True), 2)
    assert type(event).__name__ == "Connected"
    event = await asyncio.wait_for(ws.receive(events=True), 2)
    assert isinstance(event, Disconnected) and "pong" in event.cause
    peer = await server.wait_peer()
    assert any(t.name == "PING" for _, t, _ in peer.received)
    await factory.close()


async def test_an_abandoned_send_neither_goes_out_later_nor_blocks_the_next(
    server: ScriptedServer,
) -> None:
    limit = RateLimit("slow", limit=1, time_interval=60.0)
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([limit], safety_margin_pct=0))
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    await ws.send(WebSocketJSONRequest(payload={"n": 1}, throttler_limit_id="slow"))
    with pytest.raises(TimeoutError):  # the second would wait a minute for its limit
        await asyncio.wait_for(
            ws.send(WebSocketJSONRequest(payload={"n": 2}, throttler_limit_id="slow")), 0.1
        )
    await asyncio.wait_for(ws.send(WebSocketJSONRequest(payload={"n": 3})), 1)  # not held up
    peer = await server.wait_peer()
    await peer.wait_frames(2)
    await asyncio.sleep(50 * MS)  # the held-up frame's chance to arrive
    assert [json.loads(t)["n"] for t in peer.texts()] == [1, 3]
    await factory.close()
