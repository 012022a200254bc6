"""Sharding under a storm (issue 11): a Binance-like venue's limits, hundreds of topics,
resets, and the four figures that must stay at zero.

    .venv/bin/python bench/sharding_storm.py                      # 1,000 topics, 50 a message
    .venv/bin/python bench/sharding_storm.py --topics 2000 --per-message 10 --seed 7
    .venv/bin/python bench/sharding_storm.py --seeds 5            # seeds 1..5, one line each

Everything runs in this process on 127.0.0.1: the in-package exchange simulator
(:class:`~networkpype.demo.exchange.ExchangeSimulator`) as the venue, and a
``ShardedWebSocketManager`` configured as ``docs/sharding.md`` says: the venue's own numbers
(``min_send_interval = 1 / frames a second``, ``max_connection_attempts = (attempts,
window)``, ``max_topics_per_connection``, ``max_age`` the venue's cut), a ``dedup_key`` of
``(stream, seq)``, the default restart policy and liveness.

**The venue** (``Venue``, the issue's numbers by default): 200 streams per connection, 5
inbound frames a second per connection counting pings and pongs (more: close 1008), 30
connection attempts per 60 s counted as they arrive (more: HTTP 429), every connection cut
at 20 s (close 1001), a server ping every 3 s; every topic's events are numbered by one
sequence (``seq``) whatever connection carries them, and fanned out to every connection
subscribed to the topic.

**The storm** (seeded): subscribe every topic (``subscribe_topics``) and wait until each has
delivered; then, for ``--seconds``, reset (TCP RST) one random open connection every
``--reset-every`` seconds, and reset every connection at once ``--mass-resets`` times at
seeded moments (one in each of as many equal spans of the storm); then stop the faults and
wait until every topic delivers again (``--alive-bound`` seconds at most).

**The figures**, counted by the consumer (``iter_messages(events=True)``) and the venue:

* *violations*: closes 1008 (inbound rate) plus handshakes refused for the attempt limit;
* *topics alive*: topics that delivered an event produced after the faults stopped, within
  the bound;
* *unreported gaps*: a hole in a topic's ``seq`` with no ``Disconnected`` (or ``GaveUp``,
  ``TopicsLost``) of a connection that carried it between its two messages;
* *duplicates*: a ``seq`` at or below the last one delivered for its topic;
* *lost*: topics the manager reported lost for good (``TopicsLost``, ``GaveUp``), or
  rejected by ``subscribe_topics``;
* *recovery* after each mass reset: from the reset to each topic's first event produced
  after it (events queued before do not count); p50 over topics and the time until the last
  one (max). Each topic is held to the *bound* of the attempt budget's arithmetic
  (``docs/sharding.md``, "After a mass reset") for the last disconnection of its connection
  before it streamed again, read from the manager's budget as that disconnection comes: the
  wait until its redial may start (``AttemptBudget.free_at``: for the mass reset, as many
  attempts as there are connections; for a random reset during the recovery, one more than
  the redials already waiting, which go first), plus a handshake (``HANDSHAKE_ALLOWANCE``),
  the replay of a full connection (``f`` frames ``1.25 * min_send_interval`` apart) and a
  topic's next event (``1 / rate``). A topic whose connection is reset again before it
  streamed is held to the later reset's bound, from that reset. Reported: the mass reset's
  bound, how many topics a later reset re-bound (and the latest of their bounds, from the
  mass reset), and how many topics streamed after their own bound (``over``, by how much at
  most): the target is none.

Exit status: 0 when every run had no violation, no unreported gap, no duplicate, nothing
lost and every topic alive; 1 otherwise; 2 for bad arguments.

The driver (:func:`run_storm`) is importable: ``tests/chaos/test_sharding_storm.py`` runs a
short form through it; ``python3 dev.py soak`` the full one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from networkpype.demo.exchange import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import GaveUpError
from networkpype.protocol.events import (
    Disconnected,
    GaveUp,
    Reconnected,
    RotationFinished,
    RotationStarted,
)
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket._budget import HANDSHAKE_ALLOWANCE
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.response import WebSocketResponse
from networkpype.websocket.sharded import ShardedWebSocketManager
from networkpype.wire.pacing import WIRE_MARGIN

__all__ = ["StormResult", "Venue", "run_storm"]

SUBSCRIBE_BOUND = 120.0  # seconds for every topic to deliver once after subscribing
TEARDOWN_TIMEOUT = 10.0


@dataclass(frozen=True)
class Venue:
    """The venue's limits (the issue's Binance-like numbers by default); seconds."""

    streams_per_connection: int = 200
    frames_per_second: int = 5
    attempts: int = 30
    attempts_window: float = 60.0
    max_age: float = 20.0
    ping_interval: float = 3.0
    pong_timeout: float = 10.0
    rate: float = 1.0  # events a second per topic

    def simulator(self) -> ExchangeSimulator:
        return ExchangeSimulator(
            rate=self.rate,
            lifetime=3600.0,
            max_streams_per_connection=self.streams_per_connection,
            max_incoming_per_second=self.frames_per_second,
            incoming_window=1.0,
            max_connection_attempts=self.attempts,
            attempts_window=self.attempts_window,
            max_connection_age=self.max_age,
            server_ping_interval=self.ping_interval,
            server_pong_timeout=self.pong_timeout,
        )


def manager_settings(venue: Venue, per_message: int) -> dict[str, Any]:
    """``get_sharded_ws_manager`` settings as ``docs/sharding.md`` says: the venue's own
    numbers, and a ``dedup_key``."""
    return {
        "codec": BinanceCodec(max_topics_per_message=per_message),
        "max_topics_per_connection": venue.streams_per_connection,
        "min_send_interval": 1.0 / venue.frames_per_second,
        "max_connection_attempts": (venue.attempts, venue.attempts_window),
        "max_age": venue.max_age,
        "dedup_key": lambda data: (data.get("stream"), data.get("seq")),
    }


@dataclass
class StormResult:
    """What one storm measured; times in seconds."""

    seed: int
    topics: int
    per_message: int
    seconds: float
    violations: int = 0  # closes 1008
    attempts_refused: int = 0  # 429s of the attempt limit
    violation_details: list[str] = field(default_factory=list)
    alive: int = 0
    unreported_gaps: int = 0
    gap_examples: list[str] = field(default_factory=list)
    reported_gaps: int = 0
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    lost: dict[str, str] = field(default_factory=dict)
    recoveries: list[RecoveryFigure] = field(default_factory=list)  # one a mass reset
    unmapped_resets: int = 0  # resets during a recovery whose topics could not be told
    unrecovered: int = 0  # mass resets after which some topic never delivered before the next
    handshakes: int = 0
    resets: int = 0
    rotations: int = 0
    messages: int = 0
    elapsed: float = 0.0
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.aborted is None
            and self.violations == 0
            and self.attempts_refused == 0
            and self.alive == self.topics
            and self.unreported_gaps == 0
            and self.duplicates == 0
            and not self.lost
        )

    @property
    def over_bound(self) -> int:
        """Topics that streamed again after their own bound, over every mass reset."""
        return sum(r.over for r in self.recoveries)

    def line(self) -> str:
        rec = ", ".join(r.text() for r in self.recoveries) or "n/a"
        return (
            f"seed {self.seed:>6} {self.topics} topics/{self.per_message} per msg: "
            f"violations {self.violations}+{self.attempts_refused} (1008+429), "
            f"alive {self.alive}/{self.topics}, unreported gaps {self.unreported_gaps}, "
            f"duplicates {self.duplicates}, lost {len(self.lost)}, "
            f"recovery p50/max (s) {rec}, {self.handshakes} handshakes, "
            f"{self.rotations} rotations, {self.reported_gaps} reported gaps, "
            f"{self.messages:,} messages, {self.elapsed:.0f} s"
            + (f", {self.unrecovered} recoveries cut short" if self.unrecovered else "")
            + (
                f", {self.unmapped_resets} resets during a recovery not traced to topics"
                if self.unmapped_resets
                else ""
            )
            + ("" if self.aborted is None else f", ABORTED: {self.aborted}")
        )


def redial_bound(wait: float, venue: Venue, per_message: int) -> float:
    """Seconds from a disconnection until every topic of the connection streams again, by the
    attempt budget's arithmetic: ``wait`` for the redial's place, a handshake, the replay of a
    full connection at the paced rate, and a topic's next event."""
    frames = -(-venue.streams_per_connection // per_message)
    replay = frames * (1 + WIRE_MARGIN) / venue.frames_per_second
    return max(0.0, wait) + HANDSHAKE_ALLOWANCE + replay + 1.0 / venue.rate


@dataclass(frozen=True)
class RecoveryFigure:
    """One mass reset's recovery, seconds from the reset: ``p50``/``max`` over topics, the
    mass reset's ``bound``, ``rebound`` topics held to a later reset's bound instead (the
    latest such bound: ``latest_bound``), and ``over`` topics back after their own bound, by
    ``excess`` at most."""

    p50: float
    max: float
    bound: float
    rebound: int
    latest_bound: float
    over: int
    excess: float

    def text(self) -> str:
        again = (
            f", {self.rebound} reset again: bound up to {self.latest_bound:.1f}"
            if self.rebound
            else ""
        )
        over = f", {self.over} over by up to {self.excess:.1f}" if self.over else ", 0 over"
        return f"{self.p50:.2f}/{self.max:.2f} (bound {self.bound:.1f}{again}{over})"


class Recovery:
    """Each topic's bound after a mass reset at ``mark`` (monotonic seconds) with ``bound``
    seconds: pure bookkeeping, times given by the caller."""

    def __init__(self, mark: float, topics: Sequence[str], bound: float) -> None:
        self.mark = mark
        self.bound = bound
        self.deadline = dict.fromkeys(topics, mark + bound)  # topic -> latest time it may be back
        self.rebound: set[str] = set()

    def reset_again(
        self, topics: Sequence[str], at: float, bound: float, back: Any = frozenset()
    ) -> int:
        """The connection of ``topics`` was reset at ``at``, its redial's bound ``bound``
        seconds: each of them not ``back`` yet is held to it instead. Returns how many."""
        count = 0
        for topic in topics:
            if topic in self.deadline and topic not in back:
                self.deadline[topic] = at + bound
                self.rebound.add(topic)
                count += 1
        return count

    def figure(self, back: dict[str, float], now: float) -> RecoveryFigure:
        """The figure, with ``back[topic]`` when each topic streamed again (a topic not back
        counts as back ``now``)."""
        times = {t: back.get(t, now) for t in self.deadline}
        late = [times[t] - d for t, d in self.deadline.items() if times[t] > d]
        spans = [at - self.mark for at in times.values()]
        return RecoveryFigure(
            p50=statistics.median(spans) if spans else 0.0,
            max=max(spans, default=0.0),
            bound=self.bound,
            rebound=len(self.rebound),
            latest_bound=max(
                (self.deadline[t] - self.mark for t in self.rebound), default=self.bound
            ),
            over=len(late),
            excess=max(late, default=0.0),
        )


class Consumer:
    """The consumer's record (see the module docstring for what counts)."""

    def __init__(self, ws: ShardedWebSocketManager, topics: Sequence[str]) -> None:
        self.ws = ws
        self.topics = frozenset(topics)
        self.position = 0  # items consumed so far: a clock of the stream
        self.last: dict[str, tuple[int, int, str | None]] = {}  # topic -> (seq, position, shard)
        self.first_after: dict[str, float] = {}  # topic -> first new event after `arm()`
        self.after: dict[str, int] = {}  # topic -> the venue's last seq at `arm()`
        self.mark = 0.0
        self.down_at: dict[str, int] = {}  # shard -> position of its last Disconnected
        self.linked: dict[str, set[str]] = {}  # shard -> shards it rotated with
        self.lost: dict[str, str] = {}
        self.gave_up: str | None = None
        self.unreported = 0
        self.gap_examples: list[str] = []
        self.reported = 0
        self.duplicates = 0
        self.duplicate_examples: list[str] = []
        self.rotations = 0
        self.messages = 0
        self.changed = asyncio.Event()

    def arm(self, sequences: dict[str, int]) -> float:
        """Start timing recoveries from now: a topic is back when an event the venue
        produced after now (``seq`` above ``sequences[topic]``) is delivered; events queued
        before do not count."""
        self.mark = time.monotonic()
        self.after = sequences
        self.first_after = {}
        return self.mark

    def _reported(self, shards: set[str | None], since: int) -> bool:
        near = {s for s in shards if s is not None}
        for shard in list(near):
            near |= self.linked.get(shard, set())
        return any(self.down_at.get(s, -1) > since for s in near)

    def on_data(self, data: Any) -> None:
        if not isinstance(data, dict) or "seq" not in data:
            return
        topic, seq = data["stream"], data["seq"]
        self.messages += 1
        shard = self.ws.shard_of(topic)
        last = self.last.get(topic)
        if last is not None:
            last_seq, since, last_shard = last
            if seq <= last_seq:
                self.duplicates += 1
                if len(self.duplicate_examples) < 5:
                    self.duplicate_examples.append(f"{topic} {last_seq}->{seq} on {shard}")
                return
            if seq > last_seq + 1:
                if self._reported({shard, last_shard}, since):
                    self.reported += 1
                else:
                    self.unreported += 1
                    if len(self.gap_examples) < 5:
                        self.gap_examples.append(
                            f"{topic} {last_seq}->{seq} ({last_shard}->{shard})"
                        )
        self.last[topic] = (seq, self.position, shard)
        if topic not in self.first_after and self.mark and seq > self.after.get(topic, 0):
            self.first_after[topic] = time.monotonic()
            if len(self.first_after) == len(self.topics):
                self.changed.set()

    def on_event(self, event: Any) -> None:
        match event:
            case Disconnected(connection_id=shard):
                self.down_at[shard] = self.position
            case RotationStarted(connection_id=old, replacement=new):
                self.linked.setdefault(old, set()).add(new)
                self.linked.setdefault(new, set()).add(old)
            case RotationFinished():
                self.rotations += 1
            case GaveUp(connection_id=shard, cause=cause, topics=topics):
                self.down_at[shard] = self.position
                for topic in topics:
                    self.lost[topic] = f"gave up: {cause}"
            case Reconnected():
                pass
            case _:
                lost = getattr(event, "topics", None)
                if type(event).__name__ == "TopicsLost" and lost:
                    for topic in lost:
                        self.lost[topic] = getattr(event, "reason", "lost")
        self.changed.set()

    async def run(self) -> None:
        try:
            async for item in self.ws.iter_messages(events=True):
                self.position += 1
                if isinstance(item, WebSocketResponse):
                    self.on_data(item.data)
                else:
                    self.on_event(item)
        except GaveUpError as exc:
            self.gave_up = str(exc)
        finally:
            self.changed.set()

    async def all_delivered(self, bound: float) -> bool:
        """Wait until every topic delivered since ``arm()``; False after ``bound`` s."""
        deadline = time.monotonic() + bound
        while len(self.first_after) < len(self.topics):
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
        return True


def topic_names(n: int) -> list[str]:
    return [f"s{i:04d}usdt@trade" for i in range(n)]


async def run_storm(
    topics: int = 1000,
    per_message: int = 50,
    seed: int = 1,
    *,
    venue: Venue | None = None,
    seconds: float = 60.0,
    reset_every: float = 5.0,
    mass_resets: int = 2,
    alive_bound: float | None = None,
    settings: dict[str, Any] | None = None,
    progress: Any = None,
) -> StormResult:
    """One storm (see the module docstring); ``settings`` replace the manager settings the
    docs advise (``manager_settings``) key by key."""
    venue = venue or Venue()
    rng = random.Random(seed)
    result = StormResult(seed, topics, per_message, seconds)
    names = topic_names(topics)
    options = manager_settings(venue, per_message) | (settings or {})
    # After the faults stop: the venue's attempt window, and a replay, is enough.
    alive_bound = alive_bound if alive_bound is not None else venue.attempts_window + 30.0
    # One mass reset in each of `mass_resets` equal spans, away from their edges: each
    # recovery is measured whole, before the next mass reset.
    mass_at = [(i + rng.uniform(0.2, 0.8)) * seconds / mass_resets for i in range(mass_resets)]
    started = time.monotonic()
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 10, 1.0)]))
    consumer_task: asyncio.Task[None] | None = None
    async with venue.simulator() as sim:
        ws = await factory.get_sharded_ws_manager(**options)
        consumer = Consumer(ws, names)
        try:
            await ws.connect(sim.url)
            consumer_task = asyncio.create_task(consumer.run(), name="storm consumer")
            consumer.arm({})
            subscribed = await ws.subscribe_topics(names)
            for topic, reason in subscribed.rejected.items():
                result.lost[topic] = f"rejected: {reason}"
            if not await consumer.all_delivered(SUBSCRIBE_BOUND):
                missing = len(names) - len(consumer.first_after)
                raise _Abort(f"{missing} topics never delivered after subscribing")
            t0 = time.monotonic()
            next_reset = t0 + reset_every
            pending_mass = [t0 + at for at in mass_at]
            timing: Recovery | None = None
            while (now := time.monotonic()) < t0 + seconds:
                if timing is not None and len(consumer.first_after) == len(names):
                    result.recoveries.append(timing.figure(consumer.first_after, now))
                    timing = None
                if pending_mass and now >= pending_mass[0]:
                    pending_mass.pop(0)
                    if timing is not None:
                        result.unrecovered += 1
                        result.recoveries.append(timing.figure(consumer.first_after, now))
                    bound = recovery_bound(ws, venue, per_message, ws.connections)
                    mark = consumer.arm(_produced(sim))
                    killed = sim.kill_all()
                    result.resets += killed
                    timing = Recovery(mark, names, bound)
                    if progress:
                        progress(f"{now - t0:5.1f} s: mass reset of {killed} connections")
                elif now >= next_reset:
                    next_reset += reset_every
                    live = [c.connection_id for c in sim.statistics().connections if c.open]
                    if live:
                        victim = rng.choice(live)
                        held = _topics_of(ws, names, sim.subscriptions.get(victim, ()))
                        redials = ws._gate.waiting()  # they go first
                        bound = recovery_bound(ws, venue, per_message, redials + 1)
                        at = time.monotonic()
                        sim.kill(victim)
                        result.resets += 1
                        again = 0
                        if timing is not None:
                            if held:
                                again = timing.reset_again(held, at, bound, consumer.first_after)
                            else:
                                result.unmapped_resets += 1
                        if progress:
                            progress(
                                f"{now - t0:5.1f} s: reset connection {victim}"
                                + (
                                    f" ({again} topics not back yet: bound {bound:.1f} s)"
                                    if again
                                    else ""
                                )
                            )
                await asyncio.sleep(0.05)
            if timing is not None:
                if not await consumer.all_delivered(alive_bound):
                    result.unrecovered += 1
                result.recoveries.append(timing.figure(consumer.first_after, time.monotonic()))
            consumer.arm(_produced(sim))
            await consumer.all_delivered(alive_bound)
            result.alive = len(consumer.first_after)
            await asyncio.sleep(1.0)  # late duplicates and gaps show
        except _Abort as exc:
            result.aborted = str(exc)
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TEARDOWN_TIMEOUT):
                    await ws.disconnect()
                    if consumer_task is not None:
                        await consumer_task
            if consumer_task is not None and not consumer_task.done():
                consumer_task.cancel()
                await asyncio.gather(consumer_task, return_exceptions=True)
            await factory.close()
        stats = sim.statistics()
    result.violations = stats.violations
    result.attempts_refused = stats.attempts_refused
    result.violation_details = [
        f"connection {v.connection_id}: {v.messages_in_window} frames in {v.window} s "
        f"(last a {v.frame_type}, at age {v.age:.2f} s)"
        for v in stats.violation_details
    ]
    result.handshakes = stats.connections_accepted
    result.unreported_gaps = consumer.unreported
    result.gap_examples = consumer.gap_examples
    result.reported_gaps = consumer.reported
    result.duplicates = consumer.duplicates
    result.duplicate_examples = consumer.duplicate_examples
    result.lost |= consumer.lost
    if consumer.gave_up is not None:
        result.aborted = result.aborted or f"the stream ended: {consumer.gave_up}"
    result.rotations = consumer.rotations
    result.messages = consumer.messages
    result.elapsed = time.monotonic() - started
    return result


class _Abort(Exception):
    pass


def _produced(sim: ExchangeSimulator) -> dict[str, int]:
    """Per topic, the last event the venue has produced (sent or not)."""
    return {topic: t.last_sequence for topic, t in sim.statistics().topics.items()}


def recovery_bound(
    ws: ShardedWebSocketManager, venue: Venue, per_message: int, places: int
) -> float:
    """Seconds within which the topics of connections reset now stream again, when their
    redials need ``places`` attempts of the manager's budget, by the arithmetic of
    :func:`redial_bound` (see the module docstring)."""
    budget = ws._budget  # the manager's own: what it holds at this moment
    assert budget is not None
    now = time.monotonic()
    return redial_bound(budget.free_at(now, places) - now, venue, per_message)


def _topics_of(ws: ShardedWebSocketManager, names: Sequence[str], subscribed: Any) -> list[str]:
    """Every topic of the shards carrying ``subscribed`` (the venue's view of one connection:
    a connection in its replay has only part of its shard's topics yet)."""
    shards = {ws.shard_of(topic) for topic in subscribed} - {None}
    return [topic for topic in names if ws.shard_of(topic) in shards] if shards else []


def main(argv: Sequence[str] | None = None) -> int:
    import _common  # bench/ is on sys.path when this file runs as a script

    parser = _common.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=_common.positive_int, default=1000)
    parser.add_argument("--per-message", type=_common.positive_int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--seeds", type=_common.positive_int, default=None, help="seeds 1..N")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reset-every", type=float, default=5.0)
    parser.add_argument("--mass-resets", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1.0, help="events a second per topic")
    parser.add_argument("--min-send-interval", type=float, default=None)
    parser.add_argument("--max-age", type=float, default=None, help="the manager's max_age")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.INFO, format="%(relativeCreated)8.0f %(name)s %(message)s"
        )
    seeds = (
        list(range(1, args.seeds + 1))
        if args.seeds
        else [args.seed if args.seed is not None else random.randrange(2**16)]
    )
    venue = Venue(rate=args.rate)
    settings: dict[str, Any] = {}
    if args.min_send_interval is not None:
        settings["min_send_interval"] = args.min_send_interval
    if args.max_age is not None:
        settings["max_age"] = args.max_age
    print(
        f"venue: {venue}; storm: {args.seconds:g} s, a reset every {args.reset_every:g} s, "
        f"{args.mass_resets} mass resets; manager: the venue's numbers"
        + (f", overridden: {settings}" if settings else "")
    )
    failed = within = recoveries = unmapped = 0
    for seed in seeds:
        result = asyncio.run(
            run_storm(
                args.topics,
                args.per_message,
                seed,
                venue=venue,
                seconds=args.seconds,
                reset_every=args.reset_every,
                mass_resets=args.mass_resets,
                settings=settings,
                progress=print if args.verbose else None,
            )
        )
        print(result.line(), flush=True)
        for detail in result.violation_details[:5]:
            print("  violation:", detail)
        for example in result.gap_examples:
            print("  unreported gap:", example)
        for example in result.duplicate_examples:
            print("  duplicate:", example)
        for topic, why in list(result.lost.items())[:5]:
            print("  lost:", topic, why)
        failed += not result.ok
        recoveries += len(result.recoveries)
        within += sum(r.over == 0 for r in result.recoveries)
        unmapped += result.unmapped_resets
    print(f"{len(seeds) - failed} of {len(seeds)} runs clean")
    print(
        f"{within} of {recoveries} recoveries with every topic within its bound"
        + (f"; {unmapped} resets during a recovery not traced to topics" if unmapped else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
