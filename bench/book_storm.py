"""Order books through a storm: 200 books over several shards of the exchange simulator for
60 s of connection resets, dropped diffs, stale snapshots and rotations, then a reset of every
connection at once; every update of every valid book is checked against the simulator's book.

    .venv/bin/python bench/book_storm.py                   # 200 books, 60 s (the full form)
    .venv/bin/python bench/book_storm.py --books 40 --seconds 10 --seed 3

Everything runs in this process on 127.0.0.1: an ``ExchangeSimulator`` whose depth venue
serves diffs with Binance's update ids and REST snapshots within a weight limit (Binance's
6000 a minute scaled to ``REST_WEIGHT`` per ``REST_WINDOW`` s, snapshots of weight 5), a
``FaultProxy`` in front of its WebSocket endpoint, and the library as a bot uses it:
``ConnectionManagersFactory`` with a throttler that declares the venue's weights
(``BinanceSpotRules.rate_limits``), a sharded manager at Binance's frame pacing with default
supervision, a ``RESTManager``, and an ``OrderBookMaintainer`` with default settings.

The faults, from a seeded schedule, one at a time: every ``RESET_EVERY`` s one connection is
reset (TCP RST both ways, at the proxy); every ``DROP_EVERY`` s one to three diffs of a
random book are dropped by the venue (the ids jump); every ``STALE_EVERY`` s the next three
snapshots lag the stream by two to eight updates; every ``ROTATE_EVERY`` s one connection is
rotated make-before-break. Half way, the faults pause, every book is valid, and every
connection is reset at once (the mass reset): the time until all books are valid again is
measured, and the REST requests it costs must stay within the venue's weights.

Checked, for every update of every book while it is reported valid (the maintainer's
``on_update``): its levels equal the simulator's at its update id (``BookAudit``). Reported:
checks and books served wrong (must be 0), break-to-valid times (p50/p99 of ``BookResynced.
invalid_for`` after breaks), the mass reset's recovery, the venue's REST and WebSocket limit
violations (must be 0), and the counts of each fault.

Exit status: 0 when no book was served wrong, the venue counted no violation, every book was
valid at the end and the mass reset recovered within ``MASS_RESET_BOUND``; 1 otherwise; 2 for
bad arguments. ``run_book_storm`` is importable: ``tests/books/test_storm.py`` runs a short
form.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from networkpype.books import BinanceSpotRules, BookResynced, OrderBookMaintainer
from networkpype.demo import ExchangeSimulator
from networkpype.demo.book_audit import BookAudit, Mismatch
from networkpype.demo.depth_venue import DepthVenue
from networkpype.factory import ConnectionManagersFactory
from networkpype.testing import FaultProxy
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.sharded import ShardedWebSocketManager

__all__ = ["StormResult", "run_book_storm"]

RATE = 10.0  # updates a second per book (Binance's @depth@100ms)
PER_CONNECTION = 50  # books a connection: 200 books over 4 shards
REST_WEIGHT, REST_WINDOW = 600, 2.0  # the venue's snapshot weight limit (Binance / 30 in time)
RESET_EVERY, DROP_EVERY, STALE_EVERY, ROTATE_EVERY = 3.0, 1.0, 4.0, 5.0  # seconds
MASS_RESET_BOUND = 30.0  # seconds: all books valid again after the mass reset, at the latest
SETTLE = 20.0  # seconds: at the end, every book valid again, at the latest


@dataclass
class StormResult:
    books: int
    seconds: float
    checks: int = 0
    served_wrong: int = 0
    books_served_wrong: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    invalid_for: list[float] = field(default_factory=list)  # break -> valid, seconds
    mass_invalid_for: list[float] = field(default_factory=list)  # those of the mass reset
    in_mass_reset: bool = False
    loop_lags: list[float] = field(default_factory=list)  # event-loop lateness, seconds
    resets: int = 0
    drops: int = 0
    stale_armed: int = 0
    rotations: int = 0
    rotation_failures: int = 0
    mass_reset_recovery: float | None = None
    mass_reset_snapshots: int = 0
    rest_violations: int = 0
    rest_rate_limited: int = 0
    ws_violations: int = 0
    handshakes_refused: int = 0
    snapshots_served: int = 0
    stale_served: int = 0
    diffs_dropped: int = 0
    breaks: int = 0
    resyncs: int = 0
    valid_at_end: int = 0
    unclaimed: int = 0
    connections_accepted: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.served_wrong == 0
            and self.rest_violations == 0
            and self.ws_violations == 0
            and self.handshakes_refused == 0
            and self.valid_at_end == self.books
            and self.mass_reset_recovery is not None
        )

    def percentile(self, q: float, mass: bool = False) -> float | None:
        """The ``q``-th percentile of the break-to-valid times of the storm's faults, or
        (``mass``) of the mass reset."""
        return _quantile(self.mass_invalid_for if mass else self.invalid_for, q)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _all_valid(maintainer: OrderBookMaintainer, seconds: float) -> bool:
    try:
        await maintainer.wait_valid(timeout=seconds)
    except TimeoutError:
        return False
    return True


async def run_book_storm(
    books: int = 200,
    seconds: float = 60.0,
    seed: int = 1,
    *,
    per_connection: int = PER_CONNECTION,
    rate: float = RATE,
    log: bool = False,
) -> StormResult:
    """Run the storm (see the module docstring) and return what it measured."""
    rng = random.Random(seed)
    result = StormResult(books, seconds)
    symbols = [f"S{i:03d}USDT" for i in range(books)]
    rules = BinanceSpotRules(limit=100)  # weight 5: the venue keeps 20 levels a side
    depth = DepthVenue(levels=20, rest_weight_limit=REST_WEIGHT, rest_weight_window=REST_WINDOW)
    # Ample lifetime and feed length: the storm ends them, not the simulator.
    venue = ExchangeSimulator(rate=rate, lifetime=seconds + 300, max_messages=10**9, depth=depth)
    started = time.monotonic()

    def say(text: str) -> None:
        if log:
            print(f"{time.monotonic() - started:7.2f} s  {text}", flush=True)

    async with venue, FaultProxy(target_port=venue.port, seed=seed) as proxy:
        audit = BookAudit(venue.depth)
        throttler = AsyncThrottler(rules.rate_limits(REST_WEIGHT, REST_WINDOW, latency_guard=0.25))
        factory = ConnectionManagersFactory(throttler=throttler)
        try:
            ws = await factory.get_sharded_ws_manager(
                max_topics_per_connection=per_connection,
                min_send_interval=0.2,  # Binance: 5 frames a second, pings and pongs included
                max_connection_attempts=(300, 300.0),
            )
            await ws.connect(proxy.url_for("/ws"))
            rest = await factory.get_rest_manager()
            maintainer = OrderBookMaintainer(
                ws, rest, rules, f"http://127.0.0.1:{venue.port}", on_update=audit.check
            )
            async with maintainer, asyncio.TaskGroup() as tasks:
                collector = tasks.create_task(_collect(maintainer, result))
                lag = tasks.create_task(_loop_lag(result.loop_lags))
                refused = await maintainer.add(symbols)
                if refused:
                    raise RuntimeError(f"the venue refused books: {refused}")
                if not await _all_valid(maintainer, MASS_RESET_BOUND):
                    raise RuntimeError("the books did not all become valid at the start")
                say(f"{books} books valid over {ws.connections} connections")
                faults_until = time.monotonic() + seconds
                await _faults(venue, proxy, ws, maintainer, rng, result, faults_until, say)
                say("faults over: waiting for every book to be valid")
                await _all_valid(maintainer, SETTLE)
                stats = maintainer.statistics()
                result.valid_at_end = stats.valid
                result.breaks = sum(s.breaks for s in stats.states)
                result.resyncs = stats.resyncs
                result.rest_rate_limited = stats.snapshots_rate_limited
                result.unclaimed = stats.unclaimed_messages
                collector.cancel()
                lag.cancel()
        finally:
            await factory.close()
        result.checks = audit.checks
        result.served_wrong = audit.served_wrong
        result.books_served_wrong = audit.books_served_wrong
        result.mismatches = audit.mismatches
        result.rest_violations = venue.depth.rest_violations
        result.ws_violations = venue.violations
        result.handshakes_refused = venue.http_429_sent
        result.snapshots_served = venue.depth.snapshots_served
        result.stale_served = venue.depth.stale_served
        result.diffs_dropped = venue.depth.diffs_dropped
        result.connections_accepted = venue.connections_accepted
    return result


async def _loop_lag(lags: list[float], period: float = 0.05) -> None:
    """How late the event loop runs a timer: above a few milliseconds, the process lacks
    CPU (the venue and the client share one loop) and every time measured here grows."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        lags.append(max(0.0, loop.time() - due))


async def _collect(maintainer: OrderBookMaintainer, result: StormResult) -> None:
    async for event in maintainer.events():
        if isinstance(event, BookResynced) and not event.first:
            times = result.mass_invalid_for if result.in_mass_reset else result.invalid_for
            times.append(event.invalid_for)


async def _faults(
    venue: ExchangeSimulator,
    proxy: FaultProxy,
    ws: ShardedWebSocketManager,
    maintainer: OrderBookMaintainer,
    rng: random.Random,
    result: StormResult,
    until: float,
    say: Callable[[str], None],
) -> None:
    """The fault schedule until ``until`` (monotonic), with the mass reset half way."""
    now = time.monotonic()
    start = now
    due = {
        "reset": now + RESET_EVERY * rng.random(),
        "drop": now + DROP_EVERY * rng.random(),
        "stale": now + STALE_EVERY * rng.random(),
        "rotate": now + ROTATE_EVERY * rng.random(),
    }
    mass_at: float | None = start + (until - start) / 2
    symbols = list(maintainer.symbols)
    while (now := time.monotonic()) < until:
        if mass_at is not None and now >= mass_at:
            mass_at = None
            await _mass_reset(venue, proxy, maintainer, result, say)
            continue
        kind, when = min(due.items(), key=lambda item: item[1])
        if mass_at is not None:
            when = min(when, mass_at)
        if when > now:
            await asyncio.sleep(min(when, until) - now)
            continue
        if mass_at is not None and when == mass_at and due[kind] > now:
            continue
        if kind == "reset":
            live = proxy.connections
            if live and proxy.reset(rng.choice(live).conn_id):
                result.resets += 1
            due[kind] = now + RESET_EVERY
        elif kind == "drop":
            symbol = rng.choice(symbols)
            venue.depth.drop_diffs(symbol, rng.randint(1, 3))
            result.drops += 1
            due[kind] = now + DROP_EVERY
        elif kind == "stale":
            venue.depth.stale_snapshots(rng.randint(2, 8), count=3)
            result.stale_armed += 3
            due[kind] = now + STALE_EVERY
        else:
            shard = ws.shard_of(maintainer.book(rng.choice(symbols)).topic)
            if shard is not None:
                try:
                    await ws.rotate(shard)
                    result.rotations += 1
                except Exception as exc:  # a replacement refused, say: counted, not fatal
                    result.rotation_failures += 1
                    say(f"rotation of {shard} failed: {exc!r}")
            due[kind] = time.monotonic() + ROTATE_EVERY


async def _mass_reset(
    venue: ExchangeSimulator,
    proxy: FaultProxy,
    maintainer: OrderBookMaintainer,
    result: StormResult,
    say: Callable[[str], None],
) -> None:
    if not await _all_valid(maintainer, MASS_RESET_BOUND):
        say("mass reset skipped: not every book became valid")
        return
    await asyncio.sleep(REST_WINDOW + 0.2)  # earlier snapshots leave the venue's window
    served = venue.depth.snapshots_served
    await asyncio.sleep(0.5)  # events of earlier breaks are counted with the storm's
    result.in_mass_reset = True
    t0 = time.monotonic()
    killed = proxy.reset_all()
    while any(b.valid for b in maintainer.books()):
        if time.monotonic() - t0 > MASS_RESET_BOUND:
            return
        await asyncio.sleep(0.002)
    recovered = await _all_valid(maintainer, MASS_RESET_BOUND)
    if not recovered:
        for state in [s for s in maintainer.statistics().states if s.status != "valid"][:5]:
            say(f"not valid after the mass reset: {state}")
    await asyncio.sleep(0.1)  # the last events reach the collector
    result.in_mass_reset = False
    if recovered:
        result.mass_reset_recovery = time.monotonic() - t0
        result.mass_reset_snapshots = venue.depth.snapshots_served - served
        say(
            f"mass reset of {killed} connections: all books valid again after "
            f"{result.mass_reset_recovery:.2f} s, {result.mass_reset_snapshots} snapshots"
        )


def report(result: StormResult, seed: int) -> list[str]:
    """The closing lines."""
    p50, p99 = result.percentile(50), result.percentile(99)
    worst = max(result.invalid_for, default=None)
    m50, m99 = result.percentile(50, mass=True), result.percentile(99, mass=True)

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    mass = result.mass_reset_recovery
    snapshots_per_window = REST_WEIGHT // 5
    return [
        f"book storm: {result.books} books, {result.seconds:g} s, seed {seed}",
        f"  faults: {result.resets} connection resets, {result.drops} diff drops "
        f"({result.diffs_dropped} diffs), {result.stale_armed} stale snapshots armed "
        f"({result.stale_served} served), {result.rotations} rotations "
        f"({result.rotation_failures} failed)",
        f"  checks of valid books against the venue: {result.checks}",
        f"  books served wrong: {result.books_served_wrong} ({result.served_wrong} checks)",
        f"  breaks: {result.breaks}, resyncs: {result.resyncs}",
        f"  break -> valid, storm faults: p50 {ms(p50)}, p99 {ms(p99)}, max {ms(worst)} "
        f"over {len(result.invalid_for)} resyncs",
        f"  break -> valid, mass reset: p50 {ms(m50)}, p99 {ms(m99)} over "
        f"{len(result.mass_invalid_for)} resyncs",
        "  mass reset: "
        + (
            f"all {result.books} books valid again after {mass:.2f} s, "
            f"{result.mass_reset_snapshots} snapshots within {REST_WEIGHT} weight per "
            f"{REST_WINDOW:g} s ({snapshots_per_window} snapshots a window)"
            if mass is not None
            else "NOT RECOVERED"
        ),
        f"  venue: {result.snapshots_served} snapshots served, REST limit violations "
        f"{result.rest_violations} (429s seen by the client: {result.rest_rate_limited}), "
        f"WebSocket rate violations {result.ws_violations}, handshakes refused "
        f"{result.handshakes_refused}, {result.connections_accepted} handshakes",
        f"  valid at the end: {result.valid_at_end} of {result.books}; unclaimed messages "
        f"{result.unclaimed}",
        f"  event loop late by p50 {ms(_quantile(result.loop_lags, 50))}, p99 "
        f"{ms(_quantile(result.loop_lags, 99))}, max {ms(max(result.loop_lags, default=None))} "
        "(CPU: the venue and the client share one loop)",
        *(f"  WRONG: {m.symbol} at {m.update_id}: {m.detail}" for m in result.mismatches[:5]),
        f"result: {'OK' if result.ok else 'FAILED'}",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--books", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.books < 1 or not 2.0 <= args.seconds <= 3600.0:
        parser.error("need --books >= 1 and 2 <= --seconds <= 3600")
    result = asyncio.run(run_book_storm(args.books, args.seconds, args.seed, log=True))
    for line in report(result, args.seed):
        print(line, flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
