"""Errors of the REST stack, in the project's tree (:mod:`networkpype.protocol.errors`)::

    RemoteError
    ├── RESTStatusError     (OSError)      the server answered with a non-2xx status
    ├── RESTDecodeError     (ValueError)   a 2xx answer whose body is not JSON
    └── RetryableError
        └── RESTTimeoutError (TimeoutError) no complete answer within the timeout

``RESTStatusError`` is also an ``OSError`` because the REST manager used to raise a bare
``OSError``; ``except OSError`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping

from networkpype.protocol.errors import RemoteError, RetryableError
from networkpype.protocol.redaction import redact_url

__all__ = ["RESTDecodeError", "RESTStatusError", "RESTTimeoutError"]

_BODY_IN_MESSAGE = 500  # characters of the body quoted in the message


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: left to whoever needs it (see ``headers``)
    return seconds if seconds >= 0 else None


class RESTStatusError(RemoteError, OSError):
    """The server answered ``status`` (not 2xx); ``body`` is the answer's text.

    ``url`` and ``method`` say which request (``url`` redacted: query values and user-info
    masked, as in the message); ``headers`` are the answer's headers; ``retry_after`` is the
    ``Retry-After`` header in seconds when it is a number.
    """

    def __init__(
        self,
        *,
        status: int,
        body: str,
        url: str,
        method: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        snippet = body if len(body) <= _BODY_IN_MESSAGE else body[:_BODY_IN_MESSAGE] + "..."
        url = redact_url(url)  # a signed request's query holds its signature
        super().__init__(f"{method} {url} answered HTTP {status}: {snippet}")
        self.status = status
        self.body = body
        self.url = url
        self.method = method
        self.headers: Mapping[str, str] = dict(headers or {})
        self.retry_after = _retry_after(self.headers)

    def __str__(self) -> str:  # OSError would format (errno, strerror) otherwise
        return str(self.args[0])


class RESTDecodeError(RemoteError, ValueError):
    """A 2xx answer (``status``) whose ``body`` is not valid JSON; ``__cause__`` says why."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class RESTTimeoutError(RetryableError, TimeoutError):
    """No complete answer within the request's timeout."""
