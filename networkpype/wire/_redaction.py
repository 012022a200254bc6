"""Stand-ins for aiohttp's exceptions that carry the request, for chaining under the error
tree's errors (``__cause__``).

aiohttp's ``ClientResponseError`` (``WSServerHandshakeError`` is one) keeps the request's
``RequestInfo``: the URL with its token and the request headers (``Authorization``, API
keys), shown by its ``str()`` and ``repr()``; ``InvalidURL`` and ``NonHttpUrlClientError``
*are* the URL. :func:`public_cause` gives a stand-in of the same type, status and message,
with the URL redacted (:func:`~networkpype.protocol.redaction.redact_url`), no request
headers and no redirect history; other exceptions (``OSError``, ``ClientConnectorError``,
timeouts) hold neither and are returned as they are.
"""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from networkpype.protocol.redaction import redact_url

__all__ = ["public_cause"]


def public_cause(exc: BaseException) -> BaseException:
    """``exc``, or a stand-in without the URL's secrets and the request headers."""
    try:
        if isinstance(exc, aiohttp.ClientResponseError):
            return _response_error(exc)
        if isinstance(exc, aiohttp.InvalidURL):
            return type(exc)(redact_url(str(exc.url)), exc.description)
        if isinstance(exc, aiohttp.NonHttpUrlClientError):
            return type(exc)(redact_url(str(exc.args[0] if exc.args else "")))
    except Exception:  # an odd subclass: say what it was, and nothing else
        return aiohttp.ClientError(type(exc).__name__)
    return exc


def _response_error(exc: aiohttp.ClientResponseError) -> aiohttp.ClientResponseError:
    shown = URL(redact_url(str(exc.request_info.real_url)), encoded=True)
    info = aiohttp.RequestInfo(
        shown, exc.request_info.method, CIMultiDictProxy(CIMultiDict()), shown
    )
    try:  # the same type, so ``except WSServerHandshakeError`` on the cause still matches
        return type(exc)(info, (), status=exc.status, message=exc.message)
    except TypeError:  # a subclass with another signature
        return aiohttp.ClientResponseError(info, (), status=exc.status, message=exc.message)
