"""RESTManager: throttling, processors, auth and error handling over a loopback server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import aiohttp
import pytest

from networkpype.auth import Auth
from networkpype.protocol.errors import (
    ConfigurationError,
    RemoteError,
    RetryableError,
    UnknownRateLimitError,
)
from networkpype.rest.connection import RESTConnection
from networkpype.rest.errors import RESTDecodeError, RESTStatusError, RESTTimeoutError
from networkpype.rest.manager import RESTManager
from networkpype.rest.method import RESTMethod
from networkpype.rest.processor.base import RESTPostProcessor, RESTPreProcessor
from networkpype.rest.processor.time_synchronizer import TimeSynchronizerRESTPreProcessor
from networkpype.rest.request import RESTRequest
from networkpype.rest.response import RESTResponse
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.time_synchronizer import TimeSynchronizer
from networkpype.websocket.request import WebSocketRequest

if TYPE_CHECKING:
    from tests.rest.conftest import Server

SECRET = b"k"


def throttler(limit: int = 100, interval: float = 1.0) -> AsyncThrottler:
    return AsyncThrottler(
        [RateLimit("api", limit, interval), RateLimit("time", 100, 1.0)], safety_margin_pct=0
    )


def manager(
    session: aiohttp.ClientSession,
    *,
    limits: AsyncThrottler | None = None,
    pre: list[RESTPreProcessor] | None = None,
    post: list[RESTPostProcessor] | None = None,
    auth: Auth | None = None,
) -> RESTManager:
    return RESTManager(RESTConnection(session), limits or throttler(), pre, post, auth)


class HmacAuth(Auth):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        self.calls += 1
        params = dict(request.params or {})
        params["nonce"] = str(self.calls)  # fresh per call, like a timestamp
        params["signature"] = hmac.new(
            SECRET, urlencode(params).encode(), hashlib.sha256
        ).hexdigest()
        request.params = params
        return request

    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        return request


class Tag(RESTPreProcessor):
    """Appends its name to the X-Trail header, in place (it gets the pipeline's copy)."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def pre_process(self, request: RESTRequest) -> RESTRequest:
        headers = dict(request.headers or {})
        headers["X-Trail"] = headers.get("X-Trail", "") + self.name
        request.headers = headers
        request.url = (request.url or "").replace("/nowhere", "/echo")
        return request


class Seen(RESTPostProcessor):
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def post_process(self, response: RESTResponse) -> RESTResponse:
        self.log.append(f"{self.name}:{response.status}")
        return response


# -- results and errors ---------------------------------------------------------------------


async def test_get_returns_parsed_json_and_drops_none_params(
    server: Server, session: aiohttp.ClientSession
) -> None:
    params = {"symbol": "BTC", "limit": None}
    result = await manager(session).execute_request(server.url("/echo"), "api", params=params)
    assert result["method"] == "GET"
    assert result["query"] == {"symbol": "BTC"}
    assert result["body"] == ""
    # No body: NetworkPype's header all the same (its guide says so; some venues check it).
    assert result["content_type"] == "application/x-www-form-urlencoded"
    assert params == {"symbol": "BTC", "limit": None}  # the caller's dict is untouched


async def test_post_dict_is_sent_as_json(server: Server, session: aiohttp.ClientSession) -> None:
    data = {"side": "BUY", "price": None, "qty": 1}
    result = await manager(session).execute_request(
        server.url("/echo"), "api", data=data, method=RESTMethod.POST
    )
    assert result["content_type"] == "application/json"
    assert json.loads(result["body"]) == {"side": "BUY", "qty": 1}
    assert data["price"] is None


async def test_string_bodies_and_header_override(
    server: Server, session: aiohttp.ClientSession
) -> None:
    rest = manager(session)
    put = await rest.execute_request(server.url("/echo"), "api", data="{}", method=RESTMethod.PUT)
    assert put["content_type"] == "application/json"
    delete = await rest.execute_request(
        server.url("/echo"), "api", data="a=1", method=RESTMethod.DELETE
    )
    assert delete["content_type"] == "application/x-www-form-urlencoded"
    assert delete["body"] == "a=1"
    custom = await rest.execute_request(
        server.url("/echo"),
        "api",
        data="x",
        method=RESTMethod.POST,
        headers={"Content-Type": "text/plain"},
    )
    assert custom["content_type"] == "text/plain"


@pytest.mark.parametrize("code", [400, 404, 418, 500, 503])
async def test_non_2xx_raises_a_status_error(
    code: int, server: Server, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(RESTStatusError) as info:
        await manager(session).execute_request(server.url(f"/status/{code}"), "api")
    error = info.value
    assert error.status == code
    assert json.loads(error.body) == {"code": code, "msg": "scripted"}
    assert error.method == "GET"
    assert error.url == server.url(f"/status/{code}")
    assert f"HTTP {code}" in str(error)
    assert isinstance(error, RemoteError)
    assert isinstance(error, OSError)  # what the manager used to raise


async def test_retry_after_is_parsed(server: Server, session: aiohttp.ClientSession) -> None:
    with pytest.raises(RESTStatusError) as info:
        await manager(session).execute_request(server.url("/status/429"), "api")
    assert info.value.retry_after == 3.0


async def test_return_err_returns_the_error_body(
    server: Server, session: aiohttp.ClientSession
) -> None:
    rest = manager(session)
    parsed = await rest.execute_request(server.url("/status/400"), "api", return_err=True)
    assert parsed == {"code": 400, "msg": "scripted"}
    text = await rest.execute_request(server.url("/text-status/502"), "api", return_err=True)
    assert text == "plain failure"


async def test_2xx_that_is_not_json_is_a_decode_error(
    server: Server, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(RESTDecodeError) as info:
        await manager(session).execute_request(server.url("/not-json"), "api")
    assert info.value.status == 200
    assert "maintenance" in info.value.body
    assert isinstance(info.value.__cause__, ValueError)


async def test_json_sent_as_text_and_empty_bodies(
    server: Server, session: aiohttp.ClientSession
) -> None:
    rest = manager(session)
    assert await rest.execute_request(server.url("/json-as-text"), "api") == {"a": 1}
    assert await rest.execute_request(server.url("/empty"), "api") is None


async def test_timeout_bounds_the_exchange(server: Server, session: aiohttp.ClientSession) -> None:
    with pytest.raises(RESTTimeoutError) as info:
        await manager(session).execute_request(server.url("/slow"), "api", timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, RetryableError)


# -- throttling -----------------------------------------------------------------------------


async def test_unknown_limit_raises_before_anything_is_sent(
    server: Server, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(UnknownRateLimitError, match="'nope'"):
        await manager(session).execute_request(server.url("/echo"), "nope")
    assert server.script.seen == []


async def test_requests_wait_for_their_limit(
    server: Server, session: aiohttp.ClientSession
) -> None:
    rest = manager(session, limits=throttler(limit=1, interval=30.0))
    await rest.execute_request(server.url("/echo"), "api")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await rest.execute_request(server.url("/echo"), "api")
    assert len(server.script.seen) == 1  # the second one never went out


async def test_call_is_throttled_only_when_the_request_names_a_limit(
    server: Server, session: aiohttp.ClientSession
) -> None:
    rest = manager(session, limits=throttler(limit=1, interval=30.0))
    unthrottled = RESTRequest(RESTMethod.GET, url=server.url("/echo"))
    for _ in range(3):
        assert (await rest.call(unthrottled)).status == 200
    throttled = RESTRequest(RESTMethod.GET, url=server.url("/echo"), throttler_limit_id="api")
    assert (await rest.call(throttled)).status == 200
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await rest.call(throttled)
    assert len(server.script.seen) == 4
    with pytest.raises(UnknownRateLimitError):
        await rest.call(
            RESTRequest(RESTMethod.GET, url=server.url("/echo"), throttler_limit_id="nope")
        )


# -- processors and auth --------------------------------------------------------------------


async def test_processors_run_in_order_on_a_copy(
    server: Server, session: aiohttp.ClientSession
) -> None:
    log: list[str] = []
    rest = manager(
        session, pre=[Tag("a"), Tag("b")], post=[Seen(log, "first"), Seen(log, "second")]
    )
    request = RESTRequest(RESTMethod.GET, url=server.url("/nowhere"), headers={"X-Trail": ">"})
    response = await rest.call(request)
    assert (await response.json())["headers"]["X-Trail"] == ">ab"
    assert log == ["first:200", "second:200"]
    assert request.url == server.url("/nowhere")  # the caller's request is unchanged
    assert request.headers == {"X-Trail": ">"}


async def test_auth_signs_only_requests_that_require_it_and_signs_afresh(
    server: Server, session: aiohttp.ClientSession
) -> None:
    auth = HmacAuth()
    rest = manager(session, auth=auth)
    public = await rest.execute_request(server.url("/echo"), "api", params={"a": "1"})
    assert public["query"] == {"a": "1"}
    assert auth.calls == 0
    request = RESTRequest(
        RESTMethod.GET, url=server.url("/echo"), params={"a": "1"}, is_auth_required=True
    )
    first = await (await rest.call(request)).json()
    second = await (await rest.call(request)).json()
    assert first["query"]["signature"] != second["query"]["signature"]
    for seen in (first["query"], second["query"]):
        signature = seen.pop("signature")
        assert signature == hmac.new(SECRET, urlencode(seen).encode(), hashlib.sha256).hexdigest()
    assert request.params == {"a": "1"}  # the caller's request was never signed


async def test_auth_required_without_auth_is_a_configuration_error(
    server: Server, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(ConfigurationError, match="requires auth"):
        await manager(session).execute_request(server.url("/echo"), "api", is_auth_required=True)
    assert server.script.seen == []


async def test_time_synchronizer_pre_processor_initialises_once(
    server: Server, session: aiohttp.ClientSession
) -> None:
    synchronizer = TimeSynchronizer()
    connection_manager = manager(session)

    async def server_time_ms() -> float:
        answer = await connection_manager.execute_request(server.url("/time"), "time")
        return float(answer["serverTime"])

    rest = manager(session, pre=[TimeSynchronizerRESTPreProcessor(synchronizer, server_time_ms)])
    results = await asyncio.gather(
        *(rest.execute_request(server.url("/echo"), "api") for _ in range(5))
    )
    assert len(results) == 5
    assert server.script.time_calls == 1
    assert 9_000 < synchronizer.time_offset_ms < 11_000  # the server runs 10 s ahead
    await rest.execute_request(server.url("/echo"), "api")
    assert server.script.time_calls == 1  # initialised: never asked again


async def test_time_provider_failure_stops_the_request(
    server: Server, session: aiohttp.ClientSession
) -> None:
    async def broken() -> float:
        raise OSError("time endpoint down")

    rest = manager(session, pre=[TimeSynchronizerRESTPreProcessor(TimeSynchronizer(), broken)])
    with pytest.raises(OSError, match="time endpoint down"):
        await rest.execute_request(server.url("/echo"), "api")
    assert server.script.seen == []
