"""Inbound REST responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from networkpype.rest.method import RESTMethod

__all__ = ["RESTResponse"]


class RESTResponse:
    """An HTTP answer: ``url``, ``method``, ``status``, ``headers``, ``await json()/text()``.

    Wraps an ``aiohttp.ClientResponse``. ``RESTConnection.call`` reads the whole body before
    returning one, so the socket is back in the pool and :meth:`json` / :meth:`text` may be
    called any number of times, after the session is closed too.
    """

    __slots__ = ("_response",)

    def __init__(self, aiohttp_response: aiohttp.ClientResponse) -> None:
        self._response = aiohttp_response

    @property
    def url(self) -> str:
        """The URL that answered (after redirects), query string included."""
        return str(self._response.url)

    @property
    def method(self) -> RESTMethod:
        """The verb of the request."""
        return RESTMethod(self._response.method.upper())

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return int(self._response.status)

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers (case-insensitive keys)."""
        return self._response.headers

    async def text(self) -> str:
        """The body decoded to ``str`` (charset from the headers, else detected)."""
        return await self._response.text()

    async def json(self, content_type: str | None = None) -> Any:
        """The body parsed as JSON.

        Any ``Content-Type`` is accepted unless ``content_type`` names the one required
        (then ``aiohttp.ContentTypeError`` on a mismatch), since many APIs send JSON as text.
        An empty body gives ``None``; invalid JSON raises ``json.JSONDecodeError``.
        """
        return await self._response.json(content_type=content_type)
