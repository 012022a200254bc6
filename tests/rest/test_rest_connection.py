"""RESTConnection, RESTRequest, RESTResponse and RESTMethod against a loopback server."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import aiohttp
import pytest

from networkpype.protocol.errors import ConfigurationError, ConnectionFailedError
from networkpype.rest.connection import RESTConnection
from networkpype.rest.method import RESTMethod
from networkpype.rest.request import RESTRequest

if TYPE_CHECKING:
    from tests.rest.conftest import Server


def test_method_str_is_the_verb() -> None:
    assert [str(m) for m in RESTMethod] == ["GET", "POST", "PUT", "DELETE"]
    assert RESTMethod("POST") is RESTMethod.POST


def test_request_defaults_and_deep_copy() -> None:
    request = RESTRequest(RESTMethod.GET, url="http://x", params={"a": ["1"]})
    assert (request.endpoint_url, request.data, request.headers) == (None, None, None)
    assert (request.is_auth_required, request.throttler_limit_id) == (False, None)
    clone = request.copy()
    clone.params["a"].append("2")  # type: ignore[index]
    assert request.params == {"a": ["1"]}


async def test_get_with_params_and_response_accessors(
    server: Server, session: aiohttp.ClientSession
) -> None:
    connection = RESTConnection(session)
    request = RESTRequest(
        RESTMethod.GET, url=server.url("/echo"), params={"q": "1"}, headers={"X-Key": "k"}
    )
    response = await connection.call(request)
    assert response.status == 200
    assert response.method is RESTMethod.GET
    assert response.url == server.url("/echo?q=1")
    assert response.headers["content-type"].startswith("application/json")
    body = await response.json()
    assert body["query"] == {"q": "1"}
    assert body["headers"]["X-Key"] == "k"
    assert '"q": "1"' in await response.text()


async def test_body_is_read_before_call_returns(server: Server) -> None:
    async with aiohttp.ClientSession() as own_session:
        connection = RESTConnection(own_session)
        response = await connection.call(
            RESTRequest(RESTMethod.PUT, url=server.url("/echo"), data="payload")
        )
    # The session is closed: only an eagerly read body is still available.
    assert (await response.json())["body"] == "payload"
    assert (await response.json())["method"] == "PUT"


@pytest.mark.parametrize("method", list(RESTMethod))
async def test_every_method_is_sent(
    method: RESTMethod, server: Server, session: aiohttp.ClientSession
) -> None:
    response = await RESTConnection(session).call(RESTRequest(method, url=server.url("/echo")))
    assert (await response.json())["method"] == str(method)
    assert response.method is method


async def test_non_2xx_is_returned_not_raised(
    server: Server, session: aiohttp.ClientSession
) -> None:
    response = await RESTConnection(session).call(
        RESTRequest(RESTMethod.GET, url=server.url("/status/404"))
    )
    assert response.status == 404
    assert (await response.json()) == {"code": 404, "msg": "scripted"}


async def test_json_accepts_any_content_type_unless_told(
    server: Server, session: aiohttp.ClientSession
) -> None:
    response = await RESTConnection(session).call(
        RESTRequest(RESTMethod.GET, url=server.url("/json-as-text"))
    )
    assert await response.json() == {"a": 1}
    with pytest.raises(aiohttp.ContentTypeError):
        await response.json(content_type="application/json")


async def test_url_is_required(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigurationError, match="url is None"):
        await RESTConnection(session).call(RESTRequest(RESTMethod.GET, endpoint_url="/x"))


async def test_unreachable_server_is_connection_failed(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port any more.
    with pytest.raises(ConnectionFailedError) as info:
        await RESTConnection(session).call(
            RESTRequest(RESTMethod.GET, url=f"http://127.0.0.1:{port}/")
        )
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
