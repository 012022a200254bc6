"""How a URL is shown to a person: log lines, events, exception messages, CLI output.

Venues put credentials in the URL: a ``listenKey`` or ``token`` in the query string, a user
and password before the host, or a token as a path segment (Binance's user-data stream is
``wss://stream.binance.com:9443/ws/<listenKey>``). The URL given to ``connect()`` is kept for
dialing only; everything a person may read shows :func:`redact_url` of it. Request headers
(``Authorization``, API keys) are never shown at all.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "UNPARSEABLE_URL", "redact_url"]

MASK = "***"
"""What replaces a query value or the user-info of a URL."""

UNPARSEABLE_URL = "<unparseable URL>"
"""Shown instead of a URL that cannot be parsed (it may hold a secret in any place)."""

_QUERY_ITEM = re.compile(r"[^&;]+")
# A path segment that looks like a credential: 24 or more characters of base64, base64url,
# hex or a JWT, with letters and digits both (a listenKey is 60 such characters; stream
# names like ``btcusdt@depth@100ms`` and version segments are left as they are).
_TOKEN_SEGMENT = re.compile(r"(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9._~+=-]{24,}(?=/|$)")


def _mask_query_item(item: re.Match[str]) -> str:
    key, equals, _ = item.group().partition("=")
    # A bare item (``?abc123``) has no key to keep: it may be the token itself.
    return f"{key}={MASK}" if equals else MASK


def redact_url(url: str) -> str:
    """``url`` with every query value, the user-info, the fragment and every path segment that
    looks like a token taken out.

    ``wss://user:pw@host/ws?listenKey=abc&x=1#f`` is shown as
    ``wss://***@host/ws?listenKey=***&x=***``, and ``wss://host/ws/<60-character listenKey>``
    as ``wss://host/ws/***``: scheme, host, port, the rest of the path and query keys stay,
    so the message still says where. Never raises: input that does not parse (or is not a
    string) gives :data:`UNPARSEABLE_URL`. The same URL gives the same string object (a
    bot with hundreds of connections to one endpoint keeps one display form, not hundreds).
    """
    if not isinstance(url, str):
        return UNPARSEABLE_URL
    return _redacted(url)


@functools.lru_cache(maxsize=1024)
def _redacted(url: str) -> str:
    try:
        scheme, netloc, path, query, _fragment = urlsplit(url)
        if "@" in netloc:
            netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
        elif not netloc:
            # No "//": "user:pw@host/x" parses as scheme "user", path "pw@host/x".
            first, slash, rest = path.partition("/")
            if "@" in first:
                path = f"{MASK}@{first.rpartition('@')[2]}{slash}{rest}"
        path = _TOKEN_SEGMENT.sub(MASK, path)
        return urlunsplit((scheme, netloc, path, _QUERY_ITEM.sub(_mask_query_item, query), ""))
    except Exception:  # a display helper must never turn one error into another
        return UNPARSEABLE_URL
