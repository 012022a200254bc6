"""``RESTConnection``: one HTTP exchange over a shared ``aiohttp.ClientSession``."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from yarl import URL

from networkpype.protocol.errors import (
    ConfigurationError,
    ConnectionClosedError,
    ConnectionFailedError,
)
from networkpype.protocol.redaction import redact_url
from networkpype.rest.errors import RESTTimeoutError
from networkpype.rest.request import RESTRequest
from networkpype.rest.response import RESTResponse

__all__ = ["RESTConnection"]

logger = logging.getLogger(__name__)


class RESTConnection:
    """Sends :class:`RESTRequest` s with the session it is given (and does not own).

    No pipeline here: no throttling, processors or auth (see ``RESTManager``).
    """

    def __init__(self, aiohttp_client_session: aiohttp.ClientSession) -> None:
        self._client_session = aiohttp_client_session

    async def call(
        self, request: RESTRequest, encoded: bool = False, **kwargs: Any
    ) -> RESTResponse:
        """Send ``request`` as is and return the answer, whatever its status.

        The body is read before returning, which puts the socket back in the pool.
        ``encoded=True`` sends ``url`` without re-quoting it; ``kwargs`` go to
        ``ClientSession.request`` (``timeout=``, ``ssl=``, ...).

        Raises ``ConfigurationError`` when ``request.url`` is ``None`` or invalid,
        ``ConnectionFailedError`` when the server cannot be reached, ``ConnectionClosedError``
        when the connection breaks mid-exchange, ``RESTTimeoutError`` on an aiohttp timeout.
        Messages and log lines show the URL redacted (``redact_url``), never the headers.
        """
        if request.url is None:
            raise ConfigurationError(
                "RESTRequest.url is None: set url (endpoint_url is a path that a "
                "pre-processor must resolve into url)"
            )
        method = str(request.method)
        shown = redact_url(request.url)
        try:
            response = await self._client_session.request(
                method,
                URL(request.url, encoded=encoded),
                params=request.params,
                data=request.data,
                headers=request.headers,
                **kwargs,
            )
            try:
                await response.read()
            except BaseException:
                response.close()  # drop the half-read socket instead of leaking it
                raise
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            # Raised below, outside this block, so aiohttp's error (the URL) is no __context__.
            why = exc.description if isinstance(exc, aiohttp.InvalidURL) else "not HTTP(S)"
        except TimeoutError as exc:  # aiohttp's own timeouts (ServerTimeoutError is one)
            raise RESTTimeoutError(f"{method} {shown} timed out") from exc
        except aiohttp.ClientConnectorError as exc:  # names the host and port, not the URL
            raise ConnectionFailedError(f"{method} {shown}: cannot connect: {exc}") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionClosedError(
                f"{method} {shown}: connection broke: {exc}", code=None
            ) from exc
        else:
            logger.debug("%s %s -> %d", method, redact_url(str(response.url)), response.status)
            return RESTResponse(response)
        raise ConfigurationError(f"invalid URL {shown!r}") from aiohttp.InvalidURL(shown, why)
