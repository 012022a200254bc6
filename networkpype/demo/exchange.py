"""A loopback exchange simulator that enforces a venue's limits the way Binance spot does,
for tests of sharding, pacing, reconnection and gap detection.

``async with ExchangeSimulator(max_connection_age=1.0) as sim: ... sim.url``, or from
synchronous code ``with ExchangeSimulatorThread() as sim: ...``
(:mod:`networkpype.demo.thread`). Loopback only; bounded: each topic's feed stops after
``max_messages`` events, and after ``lifetime`` seconds every connection is closed with 1001
and new handshakes get HTTP 503.

Protocol, on ``/ws`` (all times monotonic seconds; defaults are Binance spot's):

* ``{"method": "SUBSCRIBE", "params": [topics...], "id": n}`` is answered
  ``{"result": null, "id": n}``; ``UNSUBSCRIBE`` likewise, and no event of those topics
  follows its answer; ``LIST_SUBSCRIPTIONS`` is answered ``{"result": [topics...], "id": n}``.
  Topics are ``<symbol>@trade`` (or ``@aggTrade``) and ``<symbol>@depth...``.
* Errors: ``{"error": {"code": c, "msg": "...", "topics": [...]}, "id": n}``. Code 2
  (invalid request): an unknown method, ``params`` not a list of strings, a topic of unknown
  format, or a SUBSCRIBE that would take the connection past ``max_streams_per_connection``;
  a rejected request changes nothing, and ``topics`` (a simulator extension; ``msg`` names
  them too) lists the topics rejected: those of unknown format, or for the cap every topic
  of the request not yet subscribed. Code 3 (invalid JSON): a frame that is not a JSON
  object, binary frames included.
* Events: each subscribed topic streams ``rate`` events a second (trade events, or order-book
  updates for depth topics) carrying ``"stream"`` (the topic) and ``"seq"``, the topic's
  sequence number. The sequence is per topic for the whole simulator, not per connection:
  a feed starts at the topic's first subscription and runs whether or not anyone listens
  (see :mod:`networkpype.demo.feeds`), so a client that resubscribes after a reconnect sees
  ``seq`` jump by exactly the events it missed.

Limits and the close codes they use:

* **Incoming rate**: more than ``max_incoming_per_second`` frames (text, binary, pings and
  pongs alike) within any sliding ``incoming_window`` seconds: close **1008** ("too many
  requests"), counted as a violation. The offending frame is not processed. The boundary is
  exact (:mod:`networkpype.demo.limits`): frames spaced exactly ``incoming_window /
  max_incoming_per_second`` apart *as the simulator reads them* pass; a client should pace
  with a margin for jitter.
* **Connection attempts**: more than ``max_connection_attempts`` admitted handshakes within
  any sliding ``attempts_window`` seconds: HTTP **429** with ``Retry-After`` (whole seconds,
  rounded up, at least 1). Refused attempts do not count against the window.
* **Streams per connection**: ``max_streams_per_connection``; see code 2 above.
* **Maximum age**: at ``max_connection_age`` seconds the simulator closes with **1001**
  ("max connection age"). Binance documents the 24 h disconnect but not its close code;
  1001 (going away) tells a client to reconnect at once, as it should.
* **Liveness**: a ping every ``server_ping_interval`` seconds; when ``server_pong_timeout``
  seconds pass after a ping with no pong (any pong counts, solicited or not, as on
  Binance), close **1011** ("pong timeout"): retryable, unlike 1008 which asks for a
  cool-off. Client pings are answered with pongs.
* **Slow consumers**: a client that leaves more than ``max_send_buffer`` bytes unread is
  aborted (TCP RST, no close frame).

Order books (:mod:`networkpype.demo.depth_venue`, mounted as ``depth``): depth topics carry
a ground-truth book's updates with Binance's ``U``/``u`` ids (and ``c``, a checksum), and
``GET /api/v3/depth?symbol=S&limit=N`` serves snapshots within Binance's request weights;
``depth.drop_diffs()`` and ``depth.stale_snapshots()`` break clients' books.

Fault hooks (call on the simulator's loop; the thread wrapper marshals them):
``kill(connection_id)`` (RST one connection), ``kill_all()`` (RST every connection),
``close_all(code, reason)``, ``refuse_for(seconds)`` (429s),
``stall(connection_id)`` / ``resume(connection_id)``. ``stop()`` closes with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from types import MappingProxyType

from aiohttp import WSMsgType, web

from networkpype.demo._app_server import LoopbackAppServer
from networkpype.demo.depth_venue import DepthVenue
from networkpype.demo.exchange_connection import SimulatedConnection
from networkpype.demo.feeds import TopicFeed
from networkpype.demo.limits import SlidingWindow
from networkpype.demo.market import SyntheticMarket, topic_kind
from networkpype.demo.statistics import (
    ExchangeSimulatorStatistics,
    TopicStatistics,
    Violation,
)
from networkpype.demo.subscriptions import INVALID_JSON, decide, error_reply

__all__ = ["ExchangeSimulator"]

logger = logging.getLogger(__name__)

_CLOSE_TIMEOUT = 2.0  # seconds a closing simulator waits for the client's close frame


def _check_seconds(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number of seconds, not {value}")


def _check_count(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")


class ExchangeSimulator(LoopbackAppServer):
    """The loopback exchange simulator; see the module docstring for protocol and limits.

    Times are seconds. ``rate``: events a second per topic; ``max_messages``: events per
    topic; ``lifetime``: the whole simulator. Defaults of the venue limits are Binance
    spot's: 1024 streams per connection, 5 incoming frames a second, 300 connection attempts
    per 300 s, 24 h connection age, a ping every 180 s answered within 600 s. Scale them
    down for quick tests.

    ``start()`` binds and returns once handshakes are accepted; ``stop()`` closes every
    connection with 1001 and releases the port (idempotent). Counters and fault hooks are
    not thread-safe: use them on the simulator's loop.
    """

    _name = "ExchangeSimulator"
    _label = "exchange simulator"
    _logger = logger

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate: float = 10.0,
        max_messages: int = 100_000,
        lifetime: float = 600.0,
        max_streams_per_connection: int = 1024,
        max_incoming_per_second: int = 5,
        incoming_window: float = 1.0,
        max_connection_attempts: int = 300,
        attempts_window: float = 300.0,
        max_connection_age: float = 86_400.0,
        server_ping_interval: float = 180.0,
        server_pong_timeout: float = 600.0,
        max_send_buffer: int = 8 << 20,
        depth: DepthVenue | None = None,
    ) -> None:
        super().__init__(host, port, lifetime)
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of events a second, not {rate}")
        for name, seconds in (
            ("lifetime", lifetime),
            ("incoming_window", incoming_window),
            ("attempts_window", attempts_window),
            ("max_connection_age", max_connection_age),
            ("server_ping_interval", server_ping_interval),
            ("server_pong_timeout", server_pong_timeout),
        ):
            _check_seconds(name, seconds)
        for name, count in (
            ("max_messages", max_messages),
            ("max_streams_per_connection", max_streams_per_connection),
            ("max_incoming_per_second", max_incoming_per_second),
            ("max_connection_attempts", max_connection_attempts),
            ("max_send_buffer", max_send_buffer),
        ):
            _check_count(name, count)
        self.rate = rate
        self.max_messages = max_messages
        self.max_streams_per_connection = max_streams_per_connection
        self.max_incoming_per_second = max_incoming_per_second
        self.incoming_window = incoming_window
        self.max_connection_attempts = max_connection_attempts
        self.attempts_window = attempts_window
        self.max_connection_age = max_connection_age
        self.server_ping_interval = server_ping_interval
        self.server_pong_timeout = server_pong_timeout
        self.max_send_buffer = max_send_buffer
        self.depth = depth if depth is not None else DepthVenue()
        self._ids = itertools.count(1)
        self._connections: dict[int, SimulatedConnection] = {}  # every one, in accept order
        self._attempts = SlidingWindow(max_connection_attempts, attempts_window)
        self._refuse_until = -math.inf
        self._markets: dict[str, SyntheticMarket] = {}
        self._feeds: dict[str, TopicFeed] = {}
        self._feed_tasks: dict[str, asyncio.Task[None]] = {}
        self._violations = 0
        self._http_429_sent = 0
        self._attempts_refused = 0
        self._http_503_sent = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws", self._handle_ws)
        self.depth.add_routes(app)

    async def _on_stop(self) -> None:
        await self.close_all(1001, "simulator stopping")
        feeds = list(self._feed_tasks.values())
        self._feed_tasks.clear()
        for feed in feeds:
            feed.cancel()
        for feed in feeds:
            with contextlib.suppress(asyncio.CancelledError):
                await feed

    async def _on_lifetime_over(self) -> None:
        await self.close_all(1001, "simulator lifetime over")

    # -- fault hooks ---------------------------------------------------------------------------

    def kill(self, connection_id: int) -> bool:
        """Abort connection ``connection_id`` with a TCP RST (no close frame); False when it
        has ended already. ``KeyError`` if unknown."""
        conn = self._connections[connection_id]
        if not conn.open:
            return False
        conn.abort("killed")
        logger.info("killed connection %d", connection_id)
        return True

    def kill_all(self) -> int:
        """Abort every live connection with a TCP RST (no close frame); return how many."""
        live = [c for c in self._connections.values() if c.open]
        for conn in live:
            conn.abort("killed")
        if live:
            logger.info("killed %d connections", len(live))
        return len(live)

    async def close_all(self, code: int = 1000, reason: str = "") -> int:
        """Close every open connection with ``code`` and ``reason`` and wait until each close
        is done (a client that does not answer is aborted after 2 s); return how many."""
        live = [c for c in self._connections.values() if c.open]
        await asyncio.gather(*(c.close(code, reason) for c in live), return_exceptions=True)
        return len(live)

    def refuse_for(self, seconds: float) -> None:
        """Answer every handshake in the next ``seconds`` with HTTP 429 (``Retry-After``: the
        seconds left, rounded up)."""
        _check_seconds("seconds", seconds)
        until = asyncio.get_running_loop().time() + seconds
        self._refuse_until = max(self._refuse_until, until)
        logger.info("refusing connections for %.3f s", seconds)

    def stall(self, connection_id: int) -> None:
        """Make connection ``connection_id`` go silent (see ``SimulatedConnection.stall``):
        nothing sent, every frame ignored, until :meth:`resume`. ``KeyError`` if unknown."""
        self._connections[connection_id].stall()

    def resume(self, connection_id: int) -> None:
        """End a :meth:`stall`; events produced meanwhile are lost (``seq`` jumps)."""
        self._connections[connection_id].resume()

    # -- counters ------------------------------------------------------------------------------

    @property
    def connections_accepted(self) -> int:
        """WebSocket handshakes completed so far."""
        return len(self._connections)

    @property
    def connections_active(self) -> int:
        """Connections neither closed nor closing."""
        return sum(1 for c in self._connections.values() if c.open)

    @property
    def violations(self) -> int:
        """Connections closed with 1008 for exceeding the incoming rate."""
        return self._violations

    @property
    def http_429_sent(self) -> int:
        """Handshakes refused with 429 (attempt limit or ``refuse_for``)."""
        return self._http_429_sent

    @property
    def attempts_refused(self) -> int:
        """Handshakes refused with 429 for the attempt limit (a venue violation by the
        client; ``refuse_for`` refusals are not counted here)."""
        return self._attempts_refused

    @property
    def messages_received(self) -> dict[int, int]:
        """Frames received (data, pings, pongs), per connection id (ids start at 1)."""
        return {i: c.messages_received for i, c in self._connections.items()}

    @property
    def messages_sent(self) -> dict[int, int]:
        """Data frames sent (replies and events), per connection id."""
        return {i: c.messages_sent for i, c in self._connections.items()}

    @property
    def subscriptions(self) -> dict[int, tuple[str, ...]]:
        """Per connection id, its current subscriptions."""
        return {i: tuple(c.subscriptions) for i, c in self._connections.items()}

    @property
    def last_sequences(self) -> dict[str, int]:
        """Per topic, the last sequence number sent to any connection (0: none yet)."""
        return {t: f.last_sequence_sent for t, f in self._feeds.items()}

    def statistics(self) -> ExchangeSimulatorStatistics:
        """A frozen snapshot of every counter. Call it on the simulator's loop thread."""
        connections = tuple(c.snapshot() for c in self._connections.values())
        topics = {
            topic: TopicStatistics(
                topic, feed.last_sequence, feed.last_sequence_sent, len(feed.subscribers)
            )
            for topic, feed in self._feeds.items()
        }
        return ExchangeSimulatorStatistics(
            connections_accepted=len(connections),
            connections_active=sum(1 for c in connections if c.open),
            connections_aborted=sum(1 for c in connections if c.closed_by == "abort"),
            violations=self._violations,
            http_429_sent=self._http_429_sent,
            http_503_sent=self._http_503_sent,
            attempts_refused=self._attempts_refused,
            connections=connections,
            topics=MappingProxyType(topics),
        )

    # -- handshake and receive loop ------------------------------------------------------------

    def _too_many(self, retry_after: float, why: str) -> web.HTTPTooManyRequests:
        self._http_429_sent += 1
        seconds = max(1, math.ceil(retry_after))
        logger.debug("handshake refused with 429 (%s), Retry-After %d", why, seconds)
        return web.HTTPTooManyRequests(headers={"Retry-After": str(seconds)}, text=f"{why}\n")

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        now = asyncio.get_running_loop().time()
        if self._expired:
            self._http_503_sent += 1
            raise web.HTTPServiceUnavailable(text="exchange simulator lifetime is over\n")
        if now < self._refuse_until:
            raise self._too_many(self._refuse_until - now, "refusing connections")
        if not self._attempts.try_acquire(now):
            self._attempts_refused += 1
            raise self._too_many(self._attempts.retry_after(now), "too many connection attempts")
        ws = web.WebSocketResponse(autoping=False, compress=False, timeout=_CLOSE_TIMEOUT)
        await ws.prepare(request)
        transport = request.transport
        if not isinstance(transport, asyncio.Transport):  # the client left during the handshake
            return ws
        conn = SimulatedConnection(
            next(self._ids),
            ws,
            transport,
            incoming=SlidingWindow(self.max_incoming_per_second, self.incoming_window),
            max_send_buffer=self.max_send_buffer,
            close_timeout=_CLOSE_TIMEOUT,
        )
        self._connections[conn.connection_id] = conn
        logger.debug("connection %d accepted", conn.connection_id)
        conn.watchdog = asyncio.create_task(
            conn.watch(self.server_ping_interval, self.server_pong_timeout, self.max_connection_age)
        )
        try:
            await self._receive_loop(conn)
        except ConnectionError:
            conn.lost("connection reset")
        finally:
            for topic in conn.subscriptions:
                self._feeds[topic].unsubscribe(conn)
            conn.subscriptions.clear()
            await conn.finish()
        logger.debug(
            "connection %d ended: %s %s", conn.connection_id, conn.closed_by, conn.close_code
        )
        return ws

    async def _receive_loop(self, conn: SimulatedConnection) -> None:
        loop = asyncio.get_running_loop()
        limit = self.max_incoming_per_second
        while True:
            msg = await conn.ws.receive()
            kind = msg.type
            if kind is WSMsgType.CLOSE:
                conn.client_closed(int(msg.data), str(msg.extra or ""))
                return
            if kind is WSMsgType.CLOSING:  # our own close, begun by another task
                return
            if kind in (WSMsgType.CLOSED, WSMsgType.ERROR):
                conn.lost()
                return
            if conn.stalled or not conn.open:
                continue
            conn.messages_received += 1
            in_window = conn.incoming.record(loop.time())
            if in_window > limit:
                self._violations += 1
                conn.violation = Violation(
                    conn.connection_id,
                    in_window,
                    limit,
                    self.incoming_window,
                    conn.age,
                    kind.name.lower(),
                )
                logger.info(
                    "connection %d: %d frames within %.3f s (limit %d), closing with 1008",
                    conn.connection_id,
                    in_window,
                    self.incoming_window,
                    limit,
                )
                conn.begin_close(1008, "too many requests")
                return
            if kind is WSMsgType.TEXT:
                self._on_request(conn, msg.data)
            elif kind is WSMsgType.BINARY:
                conn.send_json(error_reply(None, INVALID_JSON, "Invalid JSON: binary frame"))
            elif kind is WSMsgType.PING:
                conn.pong(msg.data)
            elif kind is WSMsgType.PONG:
                conn.on_pong()

    # -- requests ------------------------------------------------------------------------------

    def _on_request(self, conn: SimulatedConnection, text: str) -> None:
        decision = decide(text, conn.subscriptions, self.max_streams_per_connection)
        for topic in decision.unsubscribe:  # before the ack: no event of it follows the ack
            del conn.subscriptions[topic]
            self._feeds[topic].unsubscribe(conn)
        conn.send_json(decision.reply)
        for topic in decision.subscribe:
            conn.subscriptions[topic] = None
            self._feed(topic).subscribe(conn)

    def _feed(self, topic: str) -> TopicFeed:
        feed = self._feeds.get(topic)
        if feed is None and topic_kind(topic) == "book":
            feed = self._feeds[topic] = self.depth.feed(
                topic, rate=self.rate, max_events=self.max_messages
            )
            if self._runner is not None:
                self._feed_tasks[topic] = asyncio.create_task(feed.run(), name=f"feed {topic}")
        if feed is None:
            symbol = topic.partition("@")[0].upper()
            market = self._markets.get(symbol)
            if market is None:
                market = self._markets[symbol] = SyntheticMarket(symbol)
            feed = self._feeds[topic] = TopicFeed(
                topic, market, rate=self.rate, max_events=self.max_messages
            )
            if self._runner is not None:
                self._feed_tasks[topic] = asyncio.create_task(feed.run(), name=f"feed {topic}")
        return feed
