"""``RESTManager``: the REST pipeline (throttle, pre-process, authenticate, send,
post-process), mirroring ``WebSocketManager``.

Logging: DEBUG for each request sent and each non-2xx answer. Log lines and error messages
show URLs redacted (``redact_url``: query values and user-info masked), never headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from networkpype.protocol.errors import ConfigurationError
from networkpype.protocol.redaction import redact_url
from networkpype.rest.errors import RESTDecodeError, RESTStatusError, RESTTimeoutError
from networkpype.rest.method import RESTMethod
from networkpype.rest.request import RESTRequest

if TYPE_CHECKING:
    from networkpype.auth import Auth
    from networkpype.rest.connection import RESTConnection
    from networkpype.rest.processor.base import RESTPostProcessor, RESTPreProcessor
    from networkpype.rest.response import RESTResponse
    from networkpype.throttler.throttler import AsyncThrottler

__all__ = ["RESTManager"]

logger = logging.getLogger(__name__)

_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


class RESTManager:
    """Sends REST requests through the throttler, the processors and the auth.

    Pre-processors run in list order on a private copy of each request, then
    ``auth.rest_authenticate`` when the request has ``is_auth_required``, then the request
    is sent and the post-processors run in list order on the response. The caller's request
    (and its dicts) are never changed.
    """

    def __init__(
        self,
        connection: RESTConnection,
        throttler: AsyncThrottler,
        rest_pre_processors: Sequence[RESTPreProcessor] | None = None,
        rest_post_processors: Sequence[RESTPostProcessor] | None = None,
        auth: Auth | None = None,
    ) -> None:
        self._connection = connection
        self._throttler = throttler
        self._pre_processors = list(rest_pre_processors or [])
        self._post_processors = list(rest_post_processors or [])
        self._auth = auth

    async def execute_request(
        self,
        url: str,
        throttler_limit_id: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        method: RESTMethod = RESTMethod.GET,
        is_auth_required: bool = False,
        return_err: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (the documented API's parameter)
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request within ``throttler_limit_id`` and return the body parsed as JSON.

        ``params`` and a ``dict`` ``data`` lose their ``None`` values; a ``dict`` body is sent
        as JSON. ``Content-Type`` defaults to ``application/json`` for a JSON body, or for a
        POST/PUT without a JSON body, and to ``application/x-www-form-urlencoded`` otherwise
        (a GET/DELETE without a body too, as NetworkPype sends it); ``headers`` override it.
        ``timeout`` (seconds) bounds the HTTP exchange, not the throttler's wait. An empty 2xx
        body gives ``None``.

        Raises at once ``UnknownRateLimitError`` for an undeclared limit and
        ``ConfigurationError`` when auth is required but none was given; then
        ``RESTStatusError`` (also an ``OSError``) for a non-2xx answer unless ``return_err``,
        in which case the error body is returned (parsed JSON, or its text when it is not
        JSON); ``RESTDecodeError`` when a 2xx body is not JSON; ``RESTTimeoutError``;
        ``ConnectionFailedError`` / ``ConnectionClosedError`` for network failures.
        """
        request_headers: dict[str, str] = {}
        body: str | bytes | None
        if isinstance(data, Mapping):
            fields = {k: v for k, v in data.items() if v is not None}
            body = json.dumps(fields) if fields else None
            if body is not None:
                request_headers["Content-Type"] = _JSON
        else:
            body = data
        if "Content-Type" not in request_headers:
            is_put_or_post = method in (RESTMethod.POST, RESTMethod.PUT)
            request_headers["Content-Type"] = _JSON if is_put_or_post else _FORM
        request_headers.update(headers or {})
        request = RESTRequest(
            method=method,
            url=url,
            params={k: v for k, v in params.items() if v is not None} if params else None,
            data=body,
            headers=request_headers,
            is_auth_required=is_auth_required,
            throttler_limit_id=throttler_limit_id,
        )
        async with self._throttler.execute_task(throttler_limit_id):
            response = await self._send(request, timeout)
            return await self._result(response, return_err)

    async def call(
        self,
        request: RESTRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (mirrors execute_request)
    ) -> RESTResponse:
        """Send a prepared request through the pipeline and return the response, any status.

        When ``request.throttler_limit_id`` is set the call waits for that limit (an
        undeclared id raises ``UnknownRateLimitError`` at once); ``timeout`` (seconds) bounds
        the HTTP exchange. Raises like :meth:`execute_request`, except for the status.
        """
        if request.throttler_limit_id is None:
            return await self._send(request, timeout)
        async with self._throttler.execute_task(request.throttler_limit_id):
            return await self._send(request, timeout)

    async def _send(self, request: RESTRequest, timeout_s: float | None) -> RESTResponse:
        if request.is_auth_required and self._auth is None:
            raise ConfigurationError(
                f"{request.method} {redact_url(request.url or request.endpoint_url or '')} "
                "requires auth, but the RESTManager has no Auth"
            )
        request = request.copy()
        for pre_processor in self._pre_processors:
            request = await pre_processor.pre_process(request)
        if request.is_auth_required and self._auth is not None:
            request = await self._auth.rest_authenticate(request)
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._connection.call(request)
        except TimeoutError as exc:
            if isinstance(exc, RESTTimeoutError):
                raise
            raise RESTTimeoutError(
                f"{request.method} {redact_url(request.url or '')}: no answer within {timeout_s} s"
            ) from exc
        for post_processor in self._post_processors:
            response = await post_processor.post_process(response)
        return response

    @staticmethod
    async def _result(response: RESTResponse, return_err: bool) -> Any:
        text = await response.text()
        status = response.status
        if not 200 <= status < 300:
            logger.debug("%s %s answered %d", response.method, redact_url(response.url), status)
            if not return_err:
                raise RESTStatusError(
                    status=status,
                    body=text,
                    url=response.url,
                    method=str(response.method),
                    headers=response.headers,
                )
            try:
                return json.loads(text)
            except ValueError:
                return text
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise RESTDecodeError(
                f"{response.method} {redact_url(response.url)} answered {status} with a body "
                f"that is not JSON: {text[:200]!r}",
                status=status,
                body=text,
            ) from exc
