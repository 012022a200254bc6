"""Secrets that must never reach a person: a token in the URL and in the request headers.

``secret_url`` puts them in the query string and (``user_info``) before the host; aiohttp
turns the user-info into ``Authorization: Basic <base64>``, so the base64 form is a secret
too. aiohttp refuses an ``Authorization`` header beside user-info, hence two sets of
``CREDENTIALS``. ``exposed`` is everything a person (or an error tracker) can read off an
exception and its whole chain.
"""

from __future__ import annotations

import base64
import logging
import traceback

import pytest

TOKEN = "TOPSECRET"
PASSWORD = "s3cr3t"
SECRETS = (TOKEN, PASSWORD, base64.b64encode(f"user:{PASSWORD}".encode()).decode())
SECRET_HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-MBX-APIKEY": TOKEN}
CREDENTIALS = {  # name: (user-info in the URL, request headers)
    "user-info": (True, {"X-MBX-APIKEY": TOKEN}),
    "bearer": (False, SECRET_HEADERS),
}


def secret_url(port: int, *, user_info: bool = True) -> str:
    who = f"user:{PASSWORD}@" if user_info else ""
    return f"ws://{who}127.0.0.1:{port}/ws?listenKey={TOKEN}&x=1"


def exposed(error: BaseException) -> str:
    """str, repr, args, attributes and the printed traceback of ``error`` and of every
    exception on its ``__cause__``/``__context__`` chain."""
    parts = ["".join(traceback.format_exception(error))]
    todo, seen = [error], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        parts.append(repr(getattr(current, "__dict__", {})))
        parts.append(repr(getattr(current, "request_info", None)))
        parts += [repr(getattr(r, "request_info", None)) for r in getattr(current, "history", ())]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return "\n".join(parts)


SERVER_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")  # the test's own server


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record captured from the client side, as formatted (with its traceback) and
    with its raw arguments."""
    lines = []
    for record in caplog.records:
        if record.name.startswith(SERVER_LOGGERS):
            continue
        lines += [caplog.handler.format(record), record.getMessage(), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            lines.append(exposed(record.exc_info[1]))
    return "\n".join(lines)


def assert_hidden(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} shown in:\n{text}"


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
