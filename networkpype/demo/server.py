"""A loopback WebSocket server that speaks a Binance-style protocol, for demos, examples,
tests and benchmarks.

Endpoints (all on ``127.0.0.1``, port 0 = an ephemeral port by default):

``/ws``
    ``{"method": "SUBSCRIBE", "params": ["btcusdt@trade", ...], "id": n}`` is answered with
    ``{"result": null, "id": n}`` (``"id": null`` when the request had none), after which each
    new topic streams synthetic events at ``rate`` messages a second: ``<symbol>@trade``
    topics send ~150-byte trade events, ``<symbol>@depth`` topics ~1.1 KB order-book updates.
    Every event carries ``"seq"``, its number within that subscription (1, 2, 3, ...: a
    (re)subscription starts again at 1), and ``"stream"``, the topic. ``UNSUBSCRIBE`` is
    acknowledged the same way, and no event of those topics follows its acknowledgement.
    ``LIST_SUBSCRIPTIONS`` answers ``{"result": [topics...], "id": n}``. A malformed request
    gets ``{"error": {"code": 2, "msg": ...}, "id": n}``. The text ``PING`` gets ``PONG``; any
    other text is echoed back exactly, binary frames are echoed back as binary.

``/stream?kind=trade|book&count=N``
    For benchmarks: sends ``N`` pre-encoded messages (trade ~150 B or book ~1.1 KB) as fast
    as the client reads them, then closes with code 1000.

Everything is bounded: each subscription stops after ``max_messages`` events, ``/stream``
refuses counts above ``max_stream_count``, and when ``lifetime`` seconds have passed the
server closes every connection with 1001 and refuses new ones (HTTP 503).

Use it from async code as ``async with DemoServer() as server: ... server.url``, from
synchronous code as ``with DemoServerThread() as server: ... server.url``
(:mod:`networkpype.demo.thread`), or standalone as
``python -m networkpype.demo.server --port 8765 --duration 60``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import math
import signal
import sys
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from networkpype.demo._app_server import LOOPBACK_HOSTS, LoopbackAppServer
from networkpype.demo._bench_stream import deflate_templates, send_stream, stream_templates
from networkpype.demo._demo_connection import DemoConnection
from networkpype.demo.market import StreamKind, SyntheticMarket, topic_kind
from networkpype.demo.statistics import DemoConnectionStatistics, DemoServerStatistics

__all__ = [
    "DemoConnectionStatistics",
    "DemoServer",
    "DemoServerStatistics",
    "StreamKind",
    "main",
]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0  # seconds a closing server waits for the client's close frame
_YIELD_EVERY = 64  # an unpaced sender yields to the loop this often (fairness)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class DemoServer(LoopbackAppServer):
    """The loopback demo server; see the module docstring for the protocol.

    ``rate`` is events per second per subscription (``None``: as fast as the client reads);
    ``max_messages`` bounds each subscription's stream; ``lifetime`` (seconds, monotonic)
    bounds the whole server; ``max_stream_count`` bounds ``/stream``'s ``count``.

    ``start()`` binds and returns once connections are accepted; ``stop()`` closes every
    connection with 1001 and releases the port (idempotent). ``url``, ``port`` and
    ``stream_url()`` are valid between the two.
    """

    _name = "DemoServer"
    _label = "demo server"
    _logger = logger

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate: float | None = 10.0,
        max_messages: int = 100_000,
        lifetime: float = 600.0,
        max_stream_count: int = 10_000_000,
    ) -> None:
        super().__init__(host, port, lifetime)
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of messages a second, not {rate}")
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        if not (lifetime > 0 and math.isfinite(lifetime)):
            raise ValueError(f"lifetime must be a positive number of seconds, not {lifetime}")
        if max_stream_count < 1:
            raise ValueError(f"max_stream_count must be at least 1, not {max_stream_count}")
        self.rate = rate
        self.max_messages = max_messages
        self.max_stream_count = max_stream_count
        self._connections: list[DemoConnection] = []
        self._ids = itertools.count(1)
        self._markets: dict[str, SyntheticMarket] = {}
        self._templates: dict[StreamKind, list[bytes]] = {}
        self._deflated: dict[str, list[bytes]] = {}
        self._last_headers: Mapping[str, str] = MappingProxyType({})

    # -- lifecycle ---------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self._handle_ws)
        app.router.add_get("/stream", self._handle_stream)

    async def _on_stop(self) -> None:
        await self._close_all(WSCloseCode.GOING_AWAY, b"server stopping")

    async def _on_lifetime_over(self) -> None:
        await self._close_all(WSCloseCode.GOING_AWAY, b"server lifetime over")

    async def _close_all(self, code: int, message: bytes) -> None:
        live = [c for c in self._connections if c.open]
        for conn in live:
            await conn.stop_streams()
        await asyncio.gather(
            *(c.ws.close(code=code, message=message) for c in live), return_exceptions=True
        )

    # -- addresses and counters --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``ws://HOST:PORT``."""
        return self._ws_base

    def stream_url(self, kind: StreamKind = "trade", count: int = 1000) -> str:
        """The benchmark endpoint sending ``count`` messages of ``kind`` then closing."""
        return f"{self.base_url}/stream?kind={kind}&count={count}"

    @property
    def connections_accepted(self) -> int:
        """WebSocket handshakes completed so far (both endpoints)."""
        return len(self._connections)

    @property
    def messages_received(self) -> dict[int, int]:
        """Data frames received from clients, per connection id (ids start at 1)."""
        return {c.connection_id: c.received for c in self._connections}

    @property
    def last_handshake_headers(self) -> Mapping[str, str]:
        """The request headers of the most recent WebSocket handshake."""
        return self._last_headers

    def statistics(self) -> DemoServerStatistics:
        """A frozen snapshot of every counter. Call it on the server's loop thread."""
        return DemoServerStatistics(
            connections_accepted=len(self._connections),
            connections=tuple(c.snapshot() for c in self._connections),
            last_handshake_headers=self._last_headers,
        )

    # -- handlers ----------------------------------------------------------------------------

    async def _accept(self, request: web.Request) -> DemoConnection:
        if self._expired:
            raise web.HTTPServiceUnavailable(text="demo server lifetime is over\n")
        # permessage-deflate is accepted when a client offers it (clients do not by default).
        ws = web.WebSocketResponse(compress=True, timeout=_CLOSE_TIMEOUT)
        await ws.prepare(request)
        conn = DemoConnection(next(self._ids), request.path, request.headers, ws)
        self._connections.append(conn)
        self._last_headers = conn.headers
        logger.debug("connection %d accepted on %s", conn.connection_id, conn.path)
        return conn

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        conn = await self._accept(request)
        try:
            async for msg in conn.ws:
                if msg.type is WSMsgType.TEXT:
                    conn.received += 1
                    await self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    conn.received += 1
                    await conn.ws.send_bytes(msg.data)
                    conn.sent += 1
                elif msg.type is WSMsgType.ERROR:
                    logger.debug("connection %d: %s", conn.connection_id, conn.ws.exception())
                    break
        except ConnectionError:
            logger.debug("connection %d reset by the client", conn.connection_id)
        finally:
            await conn.stop_streams()
            conn.open = False
        return conn.ws

    async def _on_text(self, conn: DemoConnection, text: str) -> None:
        if text == "PING":
            await conn.send_text("PONG")
            return
        command = None
        if text.startswith("{"):
            with contextlib.suppress(msgspec.DecodeError):
                command = _decode(text)
        if not isinstance(command, dict) or command.get("method") not in (
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "LIST_SUBSCRIPTIONS",
        ):
            await conn.send_text(text)  # anything else is echoed back exactly
            return
        method, request_id, params = command["method"], command.get("id"), command.get("params")
        if method == "LIST_SUBSCRIPTIONS":
            await conn.send_text(_encode({"result": list(conn.streams), "id": request_id}).decode())
            return
        if params is None:
            params = []
        error = None
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            error = "params must be a list of stream names"
        else:
            bad = [p for p in params if topic_kind(p) is None]
            if bad:
                error = f"unknown stream {bad[0]!r}: use <symbol>@trade or <symbol>@depth"
        if error is not None:
            reply = {"error": {"code": 2, "msg": f"Invalid request: {error}"}, "id": request_id}
            await conn.send_text(_encode(reply).decode())
            return
        if method == "UNSUBSCRIBE":
            await conn.stop_streams(params)  # so no event of these topics follows the ack
        await conn.send_text(_encode({"result": None, "id": request_id}).decode())
        if method == "SUBSCRIBE":
            for topic in params:
                if topic not in conn.streams:
                    conn.streams[topic] = asyncio.create_task(self._stream_topic(conn, topic))

    async def _stream_topic(self, conn: DemoConnection, topic: str) -> None:
        """Send ``max_messages`` events of ``topic`` at ``rate``; owned by ``conn.streams``."""
        kind = topic_kind(topic)
        symbol = topic.partition("@")[0].upper()
        market = self._markets.get(symbol)
        if market is None:
            market = self._markets[symbol] = SyntheticMarket(symbol)
        make = market.trade if kind == "trade" else market.depth
        loop = asyncio.get_running_loop()
        interval = None if self.rate is None else 1.0 / self.rate
        start = loop.time()
        try:
            for seq in range(1, self.max_messages + 1):
                if interval is not None:
                    delay = start + (seq - 1) * interval - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif seq % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                event = make()
                event["seq"] = seq
                event["stream"] = topic
                await conn.ws.send_frame(_encode(event), WSMsgType.TEXT)
                conn.sent += 1
        except ConnectionError:
            logger.debug("connection %d: stream %s ended by a reset", conn.connection_id, topic)

    def _stream_templates(self, kind: StreamKind) -> list[bytes]:
        templates = self._templates.get(kind)
        if templates is None:
            templates = self._templates[kind] = stream_templates(kind)
        return templates

    def _deflated_templates(self, kind: str) -> list[bytes]:
        key = f"{kind}+deflate"
        deflated = self._deflated.get(key)
        if deflated is None:
            deflated = self._deflated[key] = deflate_templates(
                self._stream_templates("trade" if kind == "trade" else "book")
            )
        return deflated

    async def _handle_stream(self, request: web.Request) -> web.StreamResponse:
        kind = request.query.get("kind", "trade")
        if kind not in ("trade", "book"):
            raise web.HTTPBadRequest(text="kind must be trade or book\n")
        try:
            count = int(request.query.get("count", "1000"))
        except ValueError:
            raise web.HTTPBadRequest(text="count must be an integer\n") from None
        if not 0 <= count <= self.max_stream_count:
            raise web.HTTPBadRequest(text=f"count must be within 0..{self.max_stream_count}\n")
        templates = self._stream_templates("trade" if kind == "trade" else "book")
        conn = await self._accept(request)
        ws = conn.ws
        transport = request.transport
        try:
            if transport is None:
                raise ConnectionResetError("the client went away during the handshake")
            deflated = self._deflated_templates(kind) if ws.compress else None
            await send_stream(conn, transport, templates, count, deflated)
            await ws.close(code=WSCloseCode.OK, message=b"stream complete")
        except ConnectionError:
            logger.debug("connection %d: /stream ended by a reset", conn.connection_id)
        finally:
            conn.open = False
        return ws


# -- standalone ------------------------------------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _duration(text: str) -> float:
    value = _positive(text)
    if value > 86_400:
        raise argparse.ArgumentTypeError(f"must be at most 86400 seconds, not {text}")
    return value


async def _serve_standalone(args: argparse.Namespace) -> None:
    server = DemoServer(
        args.host,
        args.port,
        rate=args.rate,
        max_messages=args.max_messages,
        lifetime=args.duration,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        print(f"demo server listening on {server.url}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.duration)
        stats = server.statistics()
    print(
        f"demo server stopped: {stats.connections_accepted} connections, "
        f"{sum(c.messages_received for c in stats.connections)} messages received, "
        f"{sum(c.messages_sent for c in stats.connections)} sent",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m networkpype.demo.server``: serve for ``--duration`` seconds, print the URL
    (``demo server listening on ws://...``) as soon as it is bound."""
    parser = _ArgumentParser(
        prog="python -m networkpype.demo.server",
        description="Serve the networkpype demo protocol on loopback for a bounded time.",
    )
    parser.add_argument("--host", default="127.0.0.1", choices=sorted(LOOPBACK_HOSTS))
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--duration", type=_duration, default=60.0, help="seconds to serve (max 86400)"
    )
    parser.add_argument("--rate", type=_positive, default=10.0, help="events/s per topic")
    parser.add_argument("--max-messages", type=int, default=100_000, help="events per topic")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be within 0..65535, not {args.port}")
    if args.max_messages < 1:
        parser.error(f"--max-messages must be at least 1, not {args.max_messages}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_serve_standalone(args))
    except OSError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
