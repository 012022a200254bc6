"""A token in a REST URL's query string or in its headers appears in no log line or
exception (issue 9, item 9)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import aiohttp
import pytest

from networkpype.protocol.errors import ConfigurationError, ConnectionFailedError
from networkpype.rest.connection import RESTConnection
from networkpype.rest.errors import RESTDecodeError, RESTStatusError, RESTTimeoutError
from networkpype.rest.manager import RESTManager
from networkpype.rest.method import RESTMethod
from networkpype.rest.request import RESTRequest
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from tests.leaks import SECRET_HEADERS, TOKEN, assert_hidden, capture_everything, exposed, logged

if TYPE_CHECKING:
    from tests.rest.conftest import Server

QUERY = f"?signature={TOKEN}&apiKey={TOKEN}"


def manager(session: aiohttp.ClientSession) -> RESTManager:
    return RESTManager(RESTConnection(session), AsyncThrottler([RateLimit("api", 100, 1.0)]))


@pytest.mark.parametrize(
    ("path", "kind", "timeout"),
    [
        ("/status/401", RESTStatusError, None),
        ("/not-json", RESTDecodeError, None),
        ("/slow", RESTTimeoutError, 0.05),
    ],
)
async def test_rest_errors_show_query_keys_not_values(
    path: str,
    kind: type[Exception],
    timeout: float | None,
    server: Server,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    capture_everything(caplog)
    with pytest.raises(kind) as info:
        await manager(session).execute_request(
            server.url(path) + QUERY, "api", headers=SECRET_HEADERS, timeout=timeout
        )
    assert "signature=***&apiKey=***" in str(info.value)
    assert_hidden(exposed(info.value))
    assert_hidden(logged(caplog))


async def test_status_error_built_from_params_shows_no_values(
    server: Server, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    capture_everything(caplog)
    with pytest.raises(RESTStatusError) as info:
        await manager(session).execute_request(
            server.url("/status/400"), "api", params={"signature": TOKEN}
        )
    assert info.value.url == server.url("/status/400") + "?signature=***"
    assert_hidden(exposed(info.value))
    assert "/status/400?signature=*** -> 400" in logged(caplog)  # the connection's DEBUG line
    assert_hidden(logged(caplog))


@pytest.mark.parametrize(
    "url", [f"http:///x{QUERY}", f"ftp://user:{TOKEN}@h/x{QUERY}", f"x{QUERY}"]
)
async def test_invalid_url_shows_no_secrets(url: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigurationError) as info:
        await RESTConnection(session).call(RESTRequest(RESTMethod.GET, url=url))
    assert_hidden(exposed(info.value))


async def test_unreachable_server_shows_no_secrets(session: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionFailedError) as info:
        await RESTConnection(session).call(
            RESTRequest(RESTMethod.GET, url=f"http://127.0.0.1:{port}/{QUERY}")
        )
    assert "signature=***" in str(info.value)
    assert_hidden(exposed(info.value))
