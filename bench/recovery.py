"""Recovery from a reset storm, and the attempt rate against a server that accepts and closes,
with the DEFAULT restart policy (issue 9, "Defaults for a bot that runs for weeks", item 4).

    .venv/bin/python bench/recovery.py                        # 100 resets, 10 subscriptions
    .venv/bin/python bench/recovery.py --resets 20 --seed 7 --deadline 400
    .venv/bin/python bench/recovery.py --mode accept-close    # 60 s of wall time
    .venv/bin/python bench/recovery.py --mode ack-close       # a known tight loop (below)

Everything runs in this process on 127.0.0.1: a loopback aiohttp server, a
:class:`~networkpype.testing.FaultProxy` in front of it, and the seed's client code with
default settings: ``WebSocketManager(WebSocketConnection(session))``, ``connect()`` through the
proxy, one ``subscribe()`` per topic (``{"method": "SUBSCRIBE", "params": [topic], "id": n}``)
and one consumer ``async for m in manager.iter_messages(events=True)``.

**Storm** (the default mode). The server keeps one sequence per topic, whatever connection
carries it, as a venue does: every ``TICK_SECONDS`` each topic's ``seq`` grows by one and
``{"topic": t, "seq": k}`` goes to every connection subscribed to it, so a message the client
never got is a hole in ``seq``. The driver repeats ``--resets`` times: wait until the consumer
has data on every topic since the last ``Reconnected``, wait a seeded random 0-50 ms, then
reset every proxied connection (TCP RST both ways) at ``t0``. *Recovery* is ``t0`` to the
moment the server has received every topic's SUBSCRIBE on a connection accepted after ``t0``
(server-side stamp, same monotonic clock). A recovery longer than ``--recovery-bound`` counts
as unrecovered and the driver goes on waiting for it; ``--deadline`` bounds the whole run.

Counted at the end: a hole in a topic's ``seq`` with no ``Disconnected``...``Reconnected``
between its two messages is *lost without an event* (a hole across one is a reported gap);
a ``seq`` at or below the last one delivered is a *duplicate message*; a topic SUBSCRIBEd
twice on one server connection is a *duplicated subscription*.

**Accept-close** (``--mode accept-close``): the server completes each WebSocket handshake and
closes at once (close code 1000, before any data). The bench counts handshakes for
``--seconds`` of wall time (default 60) and reports those in the first minute.

**Ack-close** (``--mode ack-close``): the client subscribes to one topic, and the server
answers each SUBSCRIBE (the acknowledgement, a data frame) and then closes with 1011. That
acknowledgement is data after the replay, so the connection counts as healthy and each
restart is immediate and uncounted: a known tight loop with the defaults (not a target of
issue 9, which asks for backoff against a server that closes before any data). Counted as
accept-close, stopped at ``MAX_ATTEMPTS`` handshakes.

Exit status: 0 when the run kept its bounds and lost, duplicated and gave up nothing; 1 when
the deadline passed, a reset was not recovered within the bound, the manager gave up, or a
message was lost without an event or duplicated; 2 for bad arguments. Timing targets only
print ``met``/``MISSED``.

The driver (:func:`run_storm`, :func:`run_accept_close`) is importable:
``tests/chaos/test_reset_storm.py`` runs a short storm through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import msgspec
from aiohttp import web

from networkpype.protocol.errors import GaveUpError
from networkpype.protocol.events import Disconnected, GaveUp, Reconnected
from networkpype.supervisor.policy import RestartPolicy
from networkpype.testing import FaultProxy
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest

__all__ = [
    "AcceptCloseResult",
    "StormResult",
    "describe_policy",
    "run_accept_close",
    "run_storm",
]

TICK_SECONDS = 0.003  # one message per topic per tick, to every subscribed connection
RESET_DELAY_MAX = 0.050  # seconds: each reset comes 0..this after data flows again
RECOVERY_TARGET = 0.050  # seconds, p99 (issue 9)
FIRST_MINUTE_TARGET = 10  # handshakes at most in the first minute against accept-close
MAX_ATTEMPTS = 5000  # accept-close: more handshakes than this is a tight loop; stop
SETTLE = 0.05  # seconds after the last recovery for late duplicates to show
TEARDOWN_TIMEOUT = 10.0  # seconds for disconnect() and the consumer to end

_T = TypeVar("_T")
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class DeadlineExceeded(Exception):
    """The run's global deadline passed."""


# -- the server --------------------------------------------------------------------------------


@dataclass(eq=False)
class ServerConnection:
    """One accepted WebSocket: when it opened (monotonic) and its SUBSCRIBEs, in order."""

    number: int
    opened_at: float
    ws: web.WebSocketResponse
    subscribes: list[tuple[float, str]] = field(default_factory=list)

    def subscribed_at(self, count: int) -> float | None:
        """When the ``count``-th distinct topic was subscribed; None before that."""
        seen: set[str] = set()
        for at, topic in self.subscribes:
            seen.add(topic)
            if len(seen) == count:
                return at
        return None

    @property
    def duplicated(self) -> int:
        """SUBSCRIBEs of a topic this connection had subscribed already."""
        return len(self.subscribes) - len({topic for _, topic in self.subscribes})


class StreamServer:
    """``ws://127.0.0.1:PORT/ws``: numbered messages per subscribed topic (see the module
    docstring), or, with ``accept_close``, a handshake closed at once. ``changed`` is set at
    every handshake and every SUBSCRIBE."""

    def __init__(
        self, changed: asyncio.Event, *, accept_close: bool = False, ack_close: bool = False
    ) -> None:
        self.changed = changed
        self.accept_close = accept_close
        self.ack_close = ack_close
        self.handshakes: list[float] = []  # monotonic time of every completed handshake
        self.connections: list[ServerConnection] = []
        self.seq: dict[str, int] = {}
        self._subscribers: dict[str, set[ServerConnection]] = {}
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port bound
        if not self.accept_close:
            self._ticker = asyncio.create_task(self._tick(), name="recovery bench ticker")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        now = time.monotonic()
        self.handshakes.append(now)
        self.changed.set()
        if self.accept_close:
            await ws.close()
            return ws
        conn = ServerConnection(len(self.connections) + 1, now, ws)
        self.connections.append(conn)
        try:
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                at = time.monotonic()
                try:
                    command = _decode(msg.data)
                except msgspec.DecodeError:
                    continue
                if not isinstance(command, dict) or command.get("method") != "SUBSCRIBE":
                    continue
                for topic in command.get("params", ()):
                    conn.subscribes.append((at, topic))
                    self.seq.setdefault(topic, 0)
                    self._subscribers.setdefault(topic, set()).add(conn)
                self.changed.set()
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(_encode({"result": None, "id": command.get("id")}).decode())
                if self.ack_close:
                    await ws.close(code=1011, message=b"internal error")
                    break
        finally:
            for subscribers in self._subscribers.values():
                subscribers.discard(conn)
        return ws

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for topic, subscribers in list(self._subscribers.items()):
                seq = self.seq[topic] = self.seq[topic] + 1
                frame = _encode({"topic": topic, "seq": seq}).decode()
                for conn in list(subscribers):
                    if conn.ws.closed:
                        continue
                    try:
                        await conn.ws.send_str(frame)
                    except (ConnectionError, RuntimeError):  # reset under us: it is gone
                        subscribers.discard(conn)


# -- the client's record -------------------------------------------------------------------------


@dataclass
class Recorder:
    """What the consumer saw, checked message by message (see the module docstring)."""

    topics: frozenset[str]
    changed: asyncio.Event
    messages: int = 0
    epoch: int = 0  # Reconnected events that followed a Disconnected
    down: bool = False
    disconnected: int = 0
    reconnected: int = 0
    flowing_at: float | None = None  # every topic delivered since the last Reconnected
    lost_without_event: int = 0
    lost_examples: list[str] = field(default_factory=list)
    gaps_reported: int = 0
    missed_in_gaps: int = 0
    duplicate_messages: int = 0
    gave_up: str | None = None
    ended: bool = False
    _last: dict[str, tuple[int, int]] = field(default_factory=dict)  # topic -> (seq, epoch)
    _since: set[str] = field(default_factory=set)

    def on_data(self, data: Any) -> None:
        if not isinstance(data, dict) or "topic" not in data:
            return  # an acknowledgement
        topic, seq = data["topic"], data["seq"]
        self.messages += 1
        last = self._last.get(topic)
        if last is not None:
            last_seq, last_epoch = last
            if seq <= last_seq:
                self.duplicate_messages += 1
                return
            if seq > last_seq + 1:
                missing = seq - last_seq - 1
                if last_epoch < self.epoch:
                    self.gaps_reported += 1
                    self.missed_in_gaps += missing
                else:
                    self.lost_without_event += missing
                    if len(self.lost_examples) < 5:
                        self.lost_examples.append(f"{topic} {last_seq}->{seq}")
        self._last[topic] = (seq, self.epoch)
        if self.flowing_at is None and topic not in self._since:
            self._since.add(topic)
            if self._since >= self.topics:
                self.flowing_at = time.monotonic()
                self.changed.set()

    def on_event(self, event: Any) -> None:
        match event:
            case Disconnected():
                self.disconnected += 1
                self.down = True
            case Reconnected():
                self.reconnected += 1
                if self.down:
                    self.epoch += 1
                self.down = False
                self.flowing_at = None
                self._since.clear()
            case GaveUp(cause=cause):
                self.gave_up = cause
            case _:
                return
        self.changed.set()

    async def consume(self, manager: WebSocketManager) -> None:
        try:
            async for item in manager.iter_messages(events=True):
                data = getattr(item, "data", None)
                if data is not None:
                    self.on_data(data)
                else:
                    self.on_event(item)
        except GaveUpError as exc:
            self.gave_up = self.gave_up or str(exc)
        finally:
            self.ended = True
            self.changed.set()


async def _until(predicate: Callable[[], _T | None], changed: asyncio.Event, deadline: float) -> _T:
    """The first non-None ``predicate()``, re-checked whenever ``changed`` is set; raises
    ``DeadlineExceeded`` at ``deadline`` (monotonic seconds)."""
    while (value := predicate()) is None:
        changed.clear()
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), left)
    return value


class _GaveUpNow(Exception):
    pass


def describe_policy(policy: RestartPolicy | None = None) -> str:
    """``name=value`` for every setting of ``policy`` (default: ``RestartPolicy()``),
    nested settings flattened; functions are left out."""

    def fields(obj: Any, prefix: str) -> list[str]:
        out: list[str] = []
        for name in getattr(obj, "__struct_fields__", ()):
            value = getattr(obj, name)
            if isinstance(value, msgspec.Struct):
                out += fields(value, f"{prefix}{name}.")
            elif not callable(value):
                shown = value.value if hasattr(value, "value") else value
                out.append(f"{prefix}{name}={shown}")
        return out

    return " ".join(fields(policy if policy is not None else RestartPolicy(), ""))


# -- the storm -----------------------------------------------------------------------------------


@dataclass
class StormResult:
    """A storm's figures; times in seconds. ``recoveries[i]``: reset ``i`` to its last
    SUBSCRIBE replayed (server side); ``data_again[i]``: to data on every topic (client)."""

    resets_asked: int
    subscriptions: int
    seed: int
    recovery_bound: float
    settings: str
    resets: int = 0
    recoveries: list[float] = field(default_factory=list)
    data_again: list[float] = field(default_factory=list)
    unrecovered: int = 0
    handshakes: int = 0
    duplicated_subscriptions: int = 0
    messages: int = 0
    lost_without_event: int = 0
    lost_examples: list[str] = field(default_factory=list)
    gaps_reported: int = 0
    missed_in_gaps: int = 0
    duplicate_messages: int = 0
    gave_up: str | None = None
    aborted: str | None = None
    elapsed: float = 0.0

    @property
    def broken(self) -> bool:
        """The run broke a bound or lost, duplicated or gave up something."""
        return bool(
            self.aborted
            or self.gave_up
            or self.unrecovered
            or self.lost_without_event
            or self.duplicated_subscriptions
            or self.duplicate_messages
        )


async def run_storm(
    resets: int = 100,
    subscriptions: int = 10,
    seed: int = 0,
    *,
    recovery_bound: float = 20.0,
    deadline: float = 120.0,
    stop_on_failure: bool = False,
    progress: Callable[[str], None] | None = None,
) -> StormResult:
    """Reset the client's connection ``resets`` times, each a seeded random 0-50 ms after
    data flows again on every topic, and measure recovery (see the module docstring).

    A recovery beyond ``recovery_bound`` seconds is counted in ``unrecovered``; the driver
    then keeps waiting for it, or stops when ``stop_on_failure``. The run stops when the
    manager gives up, or, with ``aborted`` set, ``deadline`` seconds after it started.
    """
    started = time.monotonic()
    until = started + deadline
    result = StormResult(resets, subscriptions, seed, recovery_bound, describe_policy())
    rng = random.Random(seed)
    changed = asyncio.Event()
    topics = [f"topic{i}@trade" for i in range(subscriptions)]
    server = StreamServer(changed)
    recorder = Recorder(frozenset(topics), changed)
    await server.start()
    proxy = FaultProxy(target_port=server.port, seed=seed)
    session = aiohttp.ClientSession()
    manager = WebSocketManager(WebSocketConnection(session))
    consumer: asyncio.Task[None] | None = None

    def gave_up() -> None:
        if recorder.gave_up is not None or recorder.ended:
            raise _GaveUpNow

    def flowing(after: int) -> float | None:
        gave_up()
        return recorder.flowing_at if recorder.reconnected >= after else None

    def replayed(t0: float) -> float | None:
        gave_up()
        for conn in reversed(server.connections):
            if conn.opened_at < t0:
                return None
            if (at := conn.subscribed_at(subscriptions)) is not None:
                return at
        return None

    try:
        await proxy.start()
        await manager.connect(proxy.url_for("/ws"))
        consumer = asyncio.create_task(recorder.consume(manager), name="recovery bench consumer")
        for n, topic in enumerate(topics, 1):
            payload = {"method": "SUBSCRIBE", "params": [topic], "id": n}
            await manager.subscribe(WebSocketJSONRequest(payload=payload))
        try:
            await _until(lambda: flowing(0), changed, min(until, time.monotonic() + recovery_bound))
        except DeadlineExceeded:
            result.aborted = f"no data on every topic within {recovery_bound:g} s of subscribing"
            raise _GaveUpNow from None
        for i in range(1, resets + 1):
            await asyncio.sleep(rng.uniform(0.0, RESET_DELAY_MAX))
            t0 = time.monotonic()
            proxy.reset_all()
            result.resets = i
            try:
                bound = min(until, t0 + recovery_bound)
                at = await _until(functools.partial(replayed, t0), changed, bound)
            except DeadlineExceeded:
                if time.monotonic() >= until:
                    raise
                result.unrecovered += 1
                if progress is not None:
                    progress(f"reset {i}: not recovered within {recovery_bound:g} s")
                if stop_on_failure:
                    break
                at = await _until(functools.partial(replayed, t0), changed, until)
            result.recoveries.append(at - t0)
            flowed = await _until(functools.partial(flowing, i), changed, until)
            result.data_again.append(flowed - t0)
            if progress is not None:
                progress(f"reset {i}: recovered in {(at - t0) * 1000:.1f} ms")
        await asyncio.sleep(SETTLE)
    except DeadlineExceeded:
        result.aborted = (
            f"deadline of {deadline:g} s passed after {result.resets} of {resets} resets"
        )
    except _GaveUpNow:
        pass
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TEARDOWN_TIMEOUT):
                await manager.disconnect()
                if consumer is not None:
                    await consumer
        if consumer is not None and not consumer.done():
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        await session.close()
        await proxy.close()
        await server.close()
    result.elapsed = time.monotonic() - started
    result.handshakes = len(server.handshakes)
    result.duplicated_subscriptions = sum(conn.duplicated for conn in server.connections)
    for name in (
        "messages",
        "lost_without_event",
        "lost_examples",
        "gaps_reported",
        "missed_in_gaps",
        "duplicate_messages",
        "gave_up",
    ):
        setattr(result, name, getattr(recorder, name))
    return result


# -- accept, then close --------------------------------------------------------------------------


@dataclass
class AcceptCloseResult:
    """Handshakes against a server that closes each WebSocket at once; times in seconds from
    the first handshake."""

    seconds: float
    settings: str
    handshakes: list[float] = field(default_factory=list)
    gave_up: str | None = None
    connect_error: str | None = None
    aborted: str | None = None

    @property
    def first_minute(self) -> int:
        return sum(1 for at in self.handshakes if at < 60.0)

    @property
    def broken(self) -> bool:
        return bool(self.aborted or self.connect_error)


async def run_accept_close(seconds: float = 60.0, *, ack_close: bool = False) -> AcceptCloseResult:
    """Connect to a server that accepts each WebSocket and closes it at once (``ack_close``:
    once it has acknowledged the subscription), for ``seconds``; stop early when the manager
    gives up or after ``MAX_ATTEMPTS`` handshakes."""
    result = AcceptCloseResult(seconds, describe_policy())
    changed = asyncio.Event()
    server = StreamServer(changed, accept_close=not ack_close, ack_close=ack_close)
    recorder = Recorder(frozenset(), changed)
    await server.start()
    session = aiohttp.ClientSession()
    manager = WebSocketManager(WebSocketConnection(session))
    consumer: asyncio.Task[None] | None = None
    started = time.monotonic()

    def stop() -> bool | None:
        if recorder.ended or recorder.gave_up is not None:
            return True
        if len(server.handshakes) >= MAX_ATTEMPTS:
            result.aborted = f"{MAX_ATTEMPTS} handshakes: a tight loop"
            return True
        return None

    try:
        await manager.connect(server.url)
        if ack_close:
            payload = {"method": "SUBSCRIBE", "params": ["topic0@trade"], "id": 1}
            await manager.subscribe(WebSocketJSONRequest(payload=payload))
        consumer = asyncio.create_task(recorder.consume(manager), name="accept-close consumer")
        with contextlib.suppress(DeadlineExceeded):
            await _until(stop, changed, started + seconds)
    except (ConnectionError, OSError) as exc:
        result.connect_error = f"connect() raised {type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TEARDOWN_TIMEOUT):
                await manager.disconnect()
                if consumer is not None:
                    await consumer
        if consumer is not None and not consumer.done():
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        await session.close()
        await server.close()
    first = server.handshakes[0] if server.handshakes else started
    result.handshakes = [at - first for at in server.handshakes]
    result.gave_up = recorder.gave_up
    return result


# -- the report ----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:,.1f}"


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    if len(values) == 1:
        return {"p50": values[0], "p90": values[0], "p99": values[0], "max": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50": statistics.median(values),
        "p90": cuts[89],
        "p99": cuts[98],
        "max": max(values),
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_storm(result: StormResult) -> None:
    rec, data = _percentiles(result.recoveries), _percentiles(result.data_again)
    print(
        f"reset storm: {result.resets} of {result.resets_asked} resets (TCP RST, both ways), "
        f"{result.subscriptions} subscriptions, seed {result.seed}, {result.elapsed:.1f} s"
    )
    print(f"settings (RestartPolicy() defaults): {result.settings}")
    print()
    print(f"{'ms':<44}" + "".join(f"{k:>11}" for k in ("p50", "p90", "p99", "max")))
    for label, row in (
        ("recovery: reset -> all SUBSCRIBEs replayed", rec),
        ("data again: reset -> every topic delivered", data),
    ):
        print(f"{label:<44}" + "".join(f"{_ms(row[k]):>11}" for k in ("p50", "p90", "p99", "max")))
    print()
    p99 = rec["p99"]
    rows = [
        (
            "recovery p99 (ms)",
            _ms(p99),
            f"<= {RECOVERY_TARGET * 1000:g}",
            _verdict(p99 is not None and p99 <= RECOVERY_TARGET and not result.unrecovered),
        ),
        (
            f"not recovered within {result.recovery_bound:g} s",
            f"{result.unrecovered}",
            "0",
            _verdict(result.unrecovered == 0),
        ),
        (
            "lost without a gap event (messages)",
            f"{result.lost_without_event}",
            "0",
            _verdict(result.lost_without_event == 0),
        ),
        (
            "duplicated subscriptions",
            f"{result.duplicated_subscriptions}",
            "0",
            _verdict(result.duplicated_subscriptions == 0),
        ),
        (
            "duplicate messages delivered",
            f"{result.duplicate_messages}",
            "0",
            _verdict(result.duplicate_messages == 0),
        ),
        (
            "gave up",
            "no" if result.gave_up is None else "YES",
            "no",
            _verdict(result.gave_up is None),
        ),
    ]
    print(f"{'figure':<40}{'value':>10}  {'target':<10}verdict")
    for name, value, target, verdict in rows:
        print(f"{name:<40}{value:>10}  {target:<10}{verdict}")
    print()
    print(
        f"for information: {result.messages:,} messages delivered; {result.gaps_reported} gaps "
        f"across a Disconnected...Reconnected ({result.missed_in_gaps:,} messages the server "
        f"sent while the client was away); {result.handshakes} handshakes"
    )
    if result.recoveries and len(result.recoveries) <= 40:
        print(
            "recoveries in order (ms): " + ", ".join(f"{r * 1000:.0f}" for r in result.recoveries)
        )
    elif result.recoveries:
        slow = sorted(enumerate(result.recoveries, 1), key=lambda item: -item[1])[:5]
        print("slowest recoveries: " + ", ".join(f"#{i} {r * 1000:.0f} ms" for i, r in slow))
    if result.lost_examples:
        print("lost without an event, e.g.: " + "; ".join(result.lost_examples))
    if result.gave_up is not None:
        print(f"gave up after reset {result.resets}: {result.gave_up}")
    if result.aborted is not None:
        print(f"ABORTED: {result.aborted}")


def print_accept_close(result: AcceptCloseResult, what: str = "accept-then-close") -> None:
    times = result.handshakes
    print(
        f"{what} server: {len(times)} handshakes in {result.seconds:g} s "
        f"of wall time (default settings)"
    )
    if result.aborted is not None and times:
        print(f"stopped {times[-1]:.2f} s after the first handshake")
    print(f"settings (RestartPolicy() defaults): {result.settings}")
    print()
    print(f"{'figure':<40}{'value':>10}  {'target':<10}verdict")
    first = result.first_minute
    label = "handshakes in the first minute"
    if result.seconds < 60.0:
        label = f"handshakes in {result.seconds:g} s (not a minute)"
    print(f"{label:<40}{first:>10}  {'<= 10':<10}{_verdict(first <= FIRST_MINUTE_TARGET)}")
    print(f"{'gave up':<40}{'no' if result.gave_up is None else 'YES':>10}")
    print()
    if times:
        waits = [b - a for a, b in itertools.pairwise(times)]
        print("handshake times (s from the first): " + ", ".join(f"{t:.2f}" for t in times[:40]))
        print("waits between handshakes (s): " + ", ".join(f"{w:.2f}" for w in waits[:40]))
    if result.gave_up is not None:
        print(f"gave up: {result.gave_up}")
    if result.connect_error is not None:
        print(f"FAILED: {result.connect_error}")
    if result.aborted is not None:
        print(f"ABORTED: {result.aborted}")


def main(argv: Sequence[str] | None = None) -> int:
    import _common  # bench/ is on sys.path when this file runs as a script

    parser = _common.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("storm", "accept-close", "ack-close"), default="storm")
    parser.add_argument("--resets", type=_common.positive_int, default=100)
    parser.add_argument("--subscriptions", type=_common.positive_int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument(
        "--recovery-bound",
        type=float,
        default=20.0,
        help="seconds: a reset not recovered within it counts as a failure (default 20)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=120.0,
        help="seconds for the whole storm; aborted when it passes (default 120)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="accept-close: seconds of wall time to count handshakes (default 60)",
    )
    parser.add_argument("--verbose", action="store_true", help="a line per reset")
    args = parser.parse_args(argv)
    if args.mode in ("accept-close", "ack-close"):
        ack_close = args.mode == "ack-close"
        accept_close = asyncio.run(run_accept_close(args.seconds, ack_close=ack_close))
        print_accept_close(accept_close, "ack-then-close" if ack_close else "accept-then-close")
        return 1 if accept_close.broken else 0
    seed = random.randrange(2**32) if args.seed is None else args.seed
    progress = (lambda line: print(line, flush=True)) if args.verbose else None
    storm = asyncio.run(
        run_storm(
            args.resets,
            args.subscriptions,
            seed,
            recovery_bound=args.recovery_bound,
            deadline=args.deadline,
            progress=progress,
        )
    )
    print_storm(storm)
    return 1 if storm.broken else 0


if __name__ == "__main__":
    sys.exit(main())
