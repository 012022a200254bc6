"""The Autobahn|Testsuite echo client, written on networkpype's public API.

Every message is sent back byte-exact, text as text and binary as binary, until the fuzzing
server closes the connection. Connections use ``decoder="raw"`` and ``max_msg_size=0``
(section 9 sends 16 MiB messages; the one size setting tuned here). Two clients, one agent
each in the report:

* ``connection`` (agent ``networkpype-connection``): a ``WebSocketConnection`` alone, its
  ``receive()`` loop echoing each message before it reads the next;
* ``manager`` (agent ``networkpype-manager``): a ``WebSocketManager``, whose reader task
  reads ahead of the consumer (``iter_messages()``) that echoes. It runs under a
  ``TEMPORARY`` restart policy: a case's connection must not be reopened, which would run
  the case again.

    python -m tests.autobahn.echo_client ws://127.0.0.1:9001 [--api manager] [--compress]
        [--path hook|fast|fallback]

``--path`` picks the reader's path for connections (the ``fast`` fixture's three, see
``tests/websocket/conftest.py``): the hook on aiohttp's parser (the default), the fast path
without it, or aiohttp's public ``receive()`` only (the fallback). Its agent name says so
(``networkpype-manager-fast``).

Bounded: at most ``MAX_CASES`` cases, each given ``CASE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import aiohttp

from networkpype.protocol.errors import ConnectionClosedError, GaveUpError
from networkpype.supervisor.policy import RestartPolicy, RestartType
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import (
    WebSocketBinaryRequest,
    WebSocketPlainTextRequest,
    WebSocketRequest,
)
from networkpype.websocket.response import WebSocketResponse

MAX_CASES = 1000
CASE_TIMEOUT = 60.0  # seconds; the slowest case of 1-13 takes a few
PATHS = ("hook", "fast", "fallback")
logger = logging.getLogger("autobahn.echo")


def _echo_of(message: WebSocketResponse) -> WebSocketRequest:
    """The same message back: binary as binary, text (``str`` with ``decoder="raw"``) as text."""
    if message.is_binary:
        return WebSocketBinaryRequest(payload=message.data)
    return WebSocketPlainTextRequest(payload=message.data)


async def _manager(session: aiohttp.ClientSession) -> WebSocketManager:
    connection = WebSocketConnection(session, decoder="raw", max_msg_size=0)
    return WebSocketManager(
        connection, restart_policy=RestartPolicy(restart_type=RestartType.TEMPORARY)
    )


async def _connect(manager: WebSocketManager, url: str, compress: bool) -> None:
    kwargs: dict[str, Any] = {"compress": 15} if compress else {}
    await manager.connect(url, **kwargs)


async def case_count(session: aiohttp.ClientSession, base: str) -> int:
    """The number of cases the server runs (``/getCaseCount`` sends it as one text frame)."""
    manager = await _manager(session)
    await manager.connect(f"{base}/getCaseCount")
    try:
        message = await manager.receive()
    finally:
        await manager.disconnect()
    if message is None:
        raise RuntimeError("the fuzzing server sent no case count")
    return int(message.data)


async def run_case_connection(
    session: aiohttp.ClientSession, url: str, case: int, compress: bool
) -> None:
    """Echo every message with ``WebSocketConnection.receive()`` until the server closes."""
    connection = WebSocketConnection(session, decoder="raw", max_msg_size=0)
    kwargs: dict[str, Any] = {"compress": 15} if compress else {}
    try:
        await connection.connect(url, **kwargs)
    except ConnectionError as exc:
        logger.debug("case %d: connect failed: %s", case, exc)
        return
    try:
        while (message := await connection.receive()) is not None:
            await connection.send(_echo_of(message))
    except ConnectionError as exc:
        logger.debug("case %d ended: %s", case, exc)
    finally:
        await connection.disconnect()


async def run_case_manager(
    session: aiohttp.ClientSession, url: str, case: int, compress: bool
) -> None:
    """Echo every message of ``iter_messages()`` until the server ends the connection."""
    manager = await _manager(session)
    try:
        await _connect(manager, url, compress)
    except ConnectionError as exc:  # a case may fail the opening handshake on purpose
        logger.debug("case %d: connect failed: %s", case, exc)
        return
    try:
        async for message in manager.iter_messages():
            if message is None:
                continue
            try:
                await manager.send(_echo_of(message))
            except ConnectionError:
                break  # the server closed while we echoed; the stream says why next
    except (GaveUpError, ConnectionClosedError) as exc:
        logger.debug("case %d ended: %s", case, exc)
    finally:
        await manager.disconnect()


async def update_reports(session: aiohttp.ClientSession, base: str, agent: str) -> None:
    """Ask the server to write its report (``index.json`` under its ``outdir``)."""
    manager = await _manager(session)
    await manager.connect(f"{base}/updateReports?agent={agent}")
    try:
        while await manager.receive() is not None:
            pass
    except (GaveUpError, ConnectionClosedError):
        pass  # the server closes once the report is written
    finally:
        await manager.disconnect()


CLIENTS = {"connection": run_case_connection, "manager": run_case_manager}


def agent_name(api: str, compress: bool, path: str = "hook") -> str:
    """The agent a client reports as: ``networkpype-<api>``, then ``-<path>`` for a path
    other than the default hook, ``-deflate`` when compressing."""
    suffix = "" if path == "hook" else f"-{path}"
    return f"networkpype-{api}{suffix}" + ("-deflate" if compress else "")


def use_path(path: str) -> None:
    """Connections made from now on read on ``path`` (one of ``PATHS``)."""
    if path not in PATHS:
        raise ValueError(f"path {path!r}: use one of {', '.join(PATHS)}")
    WebSocketConnection.fast_path_allowed = path != "fallback"
    WebSocketConnection.hook_allowed = path == "hook"


async def run(base: str, api: str, compress: bool, path: str = "hook") -> int:
    """Run every case the server has with client ``api`` reading on ``path``; returns the
    number of cases."""
    use_path(path)
    run_case, agent = CLIENTS[api], agent_name(api, compress, path)
    async with aiohttp.ClientSession() as session:
        count = await case_count(session, base)
        if not 0 < count <= MAX_CASES:
            raise RuntimeError(f"unexpected case count {count}")
        for case in range(1, count + 1):
            url = f"{base}/runCase?case={case}&agent={agent}"
            try:
                async with asyncio.timeout(CASE_TIMEOUT):
                    await run_case(session, url, case, compress)
            except TimeoutError:
                print(f"case {case}: no end within {CASE_TIMEOUT} s", file=sys.stderr)
        await update_reports(session, base, agent)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the fuzzing server, ws://127.0.0.1:PORT")
    parser.add_argument("--api", choices=sorted(CLIENTS), default="manager")
    parser.add_argument("--compress", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--path", choices=PATHS, default="hook", help="the reader's path")
    args = parser.parse_args(argv)
    count = asyncio.run(run(args.url.rstrip("/"), args.api, args.compress, args.path))
    print(f"{count} cases run as {agent_name(args.api, args.compress, args.path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
