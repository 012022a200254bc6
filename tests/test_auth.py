"""Auth: abstract, owns a TimeSynchronizer, and a typical HMAC scheme signs afresh each time."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import urlencode

import pytest

from networkpype.auth import Auth
from networkpype.rest.method import RESTMethod
from networkpype.rest.request import RESTRequest
from networkpype.time_synchronizer import TimeSynchronizer
from networkpype.websocket.request import WebSocketJSONRequest, WebSocketRequest

SECRET = b"s3cret"


class HmacAuth(Auth):
    """Signs the query string (REST) or the JSON payload (WebSocket) over a fresh timestamp."""

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        params = dict(request.params or {})
        params["timestamp"] = str(int(self.time_provider.time() * 1e3))
        params["signature"] = hmac.new(
            SECRET, urlencode(params).encode(), hashlib.sha256
        ).hexdigest()
        request.params = params
        request.headers = {**(request.headers or {}), "X-API-KEY": "key"}
        return request

    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        payload = dict(request.payload)
        payload["timestamp"] = int(self.time_provider.time() * 1e3)
        body = json.dumps(payload, sort_keys=True).encode()
        payload["signature"] = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        request.payload = payload
        return request


class SteppingTime(TimeSynchronizer):
    """A synchronizer whose clock advances one second per reading."""

    def __init__(self) -> None:
        super().__init__()
        self._ticks = itertools.count(1_700_000_000)

    def time(self) -> float:
        return float(next(self._ticks))


def verify_rest(request: RESTRequest) -> bool:
    params = dict(request.params or {})
    signature = params.pop("signature")
    expected = hmac.new(SECRET, urlencode(params).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)


class RestOnly(Auth):
    """Implements only one of the two methods, as NetworkPype allows."""

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        return request


async def test_an_auth_implementing_one_method_is_made_and_the_other_says_so() -> None:
    auth = RestOnly()
    request = RESTRequest(method=RESTMethod.GET, url="http://127.0.0.1/x")
    assert await auth.rest_authenticate(request) is request
    with pytest.raises(NotImplementedError, match="RestOnly does not implement ws_authenticate"):
        await auth.ws_authenticate(WebSocketJSONRequest(payload={}))


def test_a_default_synchronizer_is_made_per_instance() -> None:
    a, b = HmacAuth(), HmacAuth()
    assert isinstance(a.time_provider, TimeSynchronizer)
    assert a.time_provider is not b.time_provider
    given = TimeSynchronizer()
    assert HmacAuth(time_provider=given).time_provider is given


async def test_rest_signatures_are_fresh_on_every_call() -> None:
    auth = HmacAuth(time_provider=SteppingTime())
    template = RESTRequest(RESTMethod.GET, url="http://x/api", params={"symbol": "BTC"})
    first = await auth.rest_authenticate(template.copy())
    second = await auth.rest_authenticate(template.copy())
    assert first.params is not None and second.params is not None
    assert first.params["timestamp"] == "1700000000000"
    assert second.params["timestamp"] == "1700000001000"
    assert first.params["signature"] != second.params["signature"]
    assert verify_rest(first)
    assert verify_rest(second)
    assert first.headers == {"X-API-KEY": "key"}
    assert template.params == {"symbol": "BTC"}  # the copies were signed, not the template


async def test_ws_signatures_are_fresh_on_every_call() -> None:
    auth = HmacAuth(time_provider=SteppingTime())
    subscription = WebSocketJSONRequest(payload={"op": "subscribe"}, is_auth_required=True)
    first = await auth.ws_authenticate(subscription.copy())
    second = await auth.ws_authenticate(subscription.copy())
    assert first.payload["timestamp"] != second.payload["timestamp"]
    assert first.payload["signature"] != second.payload["signature"]
    assert subscription.payload == {"op": "subscribe"}


async def test_timestamps_follow_the_synchronized_server_clock() -> None:
    synchronizer = TimeSynchronizer()
    synchronizer.add_time_offset_ms_sample(60_000.0)  # the server is a minute ahead
    auth = HmacAuth(time_provider=synchronizer)
    before_ms = time.time() * 1e3
    signed = await auth.rest_authenticate(RESTRequest(RESTMethod.GET, url="http://x"))
    after_ms = time.time() * 1e3
    assert signed.params is not None
    timestamp = int(signed.params["timestamp"])
    assert before_ms + 60_000 - 1 <= timestamp <= after_ms + 60_000
