"""``networkpype demo``: hundreds of topics through the sharded, supervised manager while a
seeded schedule breaks things, checked message by message.

The pieces, all on loopback:

* the venue: :class:`~networkpype.demo.exchange.ExchangeSimulator`, Binance's limits scaled
  down, every event numbered per topic (``seq``);
* the network: a :class:`~networkpype.testing.FaultProxy` between client and venue;
* the client: ``ConnectionManagersFactory.get_sharded_ws_manager`` with a per-connection
  cap (the topics spread over ``--connections``), paced sends, a limit on connection
  attempts, liveness pings, a short cool-off, rotation by age, and a ``dedup_key`` for the
  rotations' overlap;
* the faults (:mod:`networkpype.cli.demo_plan`): a reset, a blackholed (half-open)
  connection, a 429 on reconnect, a close with 1008 and a rotation, each once;
* the check (:mod:`networkpype.cli.audit`): every ``seq`` jump must follow a gap event of
  its connection, every topic must receive after the last fault;
* order books (:mod:`networkpype.cli.demo_books`, ``--books``): kept by an
  ``OrderBookMaintainer`` over a manager of their own, with faults of their own; every update
  of a valid book is checked against the venue's book, and no book may be served wrong.

The exit status is 0 when the check holds, 1 when it does not, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from networkpype.cli import _args, cluster
from networkpype.cli.audit import AuditReport, StreamAudit
from networkpype.cli.demo_books import DemoBooks
from networkpype.cli.demo_plan import (
    DemoSettings,
    FaultKind,
    PlannedFault,
    demo_topics,
    plan_faults,
)
from networkpype.cli.demo_view import ConnectionRow, DemoView, Frame, PlainView, RichView
from networkpype.demo.exchange import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.limits.rate_limit import RateLimit
from networkpype.protocol.events import (
    Connected,
    ConnectionEvent,
    Disconnected,
    GaveUp,
    MessagesDropped,
    Reconnected,
    RotationFinished,
    RotationStarted,
)
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing import FaultProxy
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.sharded import ShardedStatistics, ShardedWebSocketManager
from networkpype.wire.response import WebSocketResponse

__all__ = ["add_parser", "run"]

DEFAULT_TOPICS = 300
DEFAULT_DURATION = 30.0
DEFAULT_BOOKS = 20
MIN_DURATION = 5.0  # seconds: five faults and their recoveries need about that
REFRESH_INTERVAL = 0.25  # seconds between two frames of the view


def _topics(text: str) -> list[str]:
    """A count of generated topics, or a comma-separated list of ``<symbol>@trade|depth``."""
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= 5000:
            raise argparse.ArgumentTypeError(f"must be within 1..5000 topics, not {text}")
        return demo_topics(count)
    topics = list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    for topic in topics:
        symbol, _, stream = topic.partition("@")
        if not symbol.isalnum() or not (stream == "trade" or stream.startswith("depth")):
            raise argparse.ArgumentTypeError(f"{topic!r} is not <symbol>@trade or <symbol>@depth")
    if not topics:
        raise argparse.ArgumentTypeError("give a number of topics or a comma-separated list")
    return topics


def _book_count(text: str) -> int:
    """A number of order books: 0..1000."""
    if not text.isdigit() or int(text) > 1000:
        raise argparse.ArgumentTypeError(f"must be within 0..1000 books, not {text}")
    return int(text)


def add_parser(commands: Any) -> None:
    """Add ``demo`` to the ``networkpype`` sub-commands."""
    parser = commands.add_parser(
        "demo",
        help="many topics through the sharded manager while faults are injected (loopback)",
        description="Subscribe topics of a loopback exchange simulator through the sharded, "
        "supervised manager, behind a fault-injecting proxy; break connections on a seeded "
        "schedule and check that nothing is lost and every gap is reported. Exit status 0 "
        "only if so.",
    )
    parser.add_argument(
        "--duration",
        type=_args.seconds(MIN_DURATION, 3600.0, low_inclusive=True),
        default=DEFAULT_DURATION,
        help=f"seconds of streaming, at least {MIN_DURATION:g} (default {DEFAULT_DURATION:g})",
    )
    parser.add_argument(
        "--topics",
        type=_topics,
        default=demo_topics(DEFAULT_TOPICS),
        metavar="N|LIST",
        help=f"how many topics, or a comma-separated list (default {DEFAULT_TOPICS})",
    )
    parser.add_argument(
        "--connections",
        type=_args.positive_int,
        default=3,
        help="connections to spread the topics over (default 3)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the fault schedule (default 1)"
    )
    parser.add_argument(
        "--books",
        type=_book_count,
        default=DEFAULT_BOOKS,
        help=f"order books kept beside the topics, 0 for none (default {DEFAULT_BOOKS})",
    )
    parser.add_argument(
        "--rate",
        type=_args.seconds(0.0, 1000.0),
        default=10.0,
        help="events per second per topic (default 10)",
    )
    parser.add_argument(
        "--no-tui",
        action="store_true",
        help="plain log lines instead of the live view (automatic when stdout is not a TTY)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the library's INFO log lines"
    )
    cluster.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo as the command line asked; returns the exit status."""
    if args.cluster:
        return cluster.run(args)
    settings = DemoSettings.for_run(args.topics, args.connections, args.duration, args.rate)
    plan = plan_faults(args.seed, args.duration)
    tui = not (args.no_tui or args.quiet) and sys.stdout.isatty()
    return asyncio.run(
        _main(settings, plan, args.seed, tui, args.quiet, args.verbose, books=args.books)
    )


async def _main(
    settings: DemoSettings,
    plan: tuple[PlannedFault, ...],
    seed: int,
    tui: bool,
    quiet: bool,
    verbose: bool,
    *,
    books: int = 0,
) -> int:
    title = (
        f"networkpype demo: seed {seed}, {len(settings.topics)} topics, "
        f"{settings.max_topics_per_connection} per connection"
    )
    view: DemoView = (
        RichView(title, min_send_interval=settings.min_send_interval)
        if tui
        else PlainView(quiet=quiet)
    )
    venue = ExchangeSimulator(
        rate=settings.rate,
        lifetime=settings.duration + 60.0,
        max_streams_per_connection=settings.max_topics_per_connection,
    )
    kept: DemoBooks | None = None
    async with venue, FaultProxy(target_port=venue.port, seed=seed) as proxy:
        factory = ConnectionManagersFactory(
            throttler=AsyncThrottler([RateLimit("default", 10, 1.0)])
        )
        try:
            manager = await _sharded_manager(factory, settings)
            await manager.connect(
                proxy.url_for("/ws"),
                ping_interval=settings.ping_interval,
                pong_timeout=settings.pong_timeout,
            )
            with view, _log_into(view, verbose):
                demo = _Demo(settings, plan, manager, venue, proxy, view)
                if books:
                    demo.books = kept = DemoBooks(venue, books, seed, demo.log)
                    await kept.start(
                        await _sharded_manager(kept.factory, settings),
                        ping_interval=settings.ping_interval,
                        pong_timeout=settings.pong_timeout,
                    )
                report, interrupted = await demo.run()
                if kept is not None and not interrupted:
                    await kept.settle(2.0)
        finally:
            if kept is not None:
                await kept.aclose()
            await factory.close()
    lines = summary(
        settings,
        seed,
        report,
        venue,
        faults=(demo.faults_done, len(plan)),
        half_open_detected=demo.half_open_detected,
        interrupted=interrupted,
        books=demo.books,
    )
    for line in lines:
        print(line, flush=True)
    if interrupted:
        return 130
    books_ok = demo.books is None or demo.books.ok
    return 0 if report.ok and venue.violations == 0 and books_ok else 1


async def _sharded_manager(
    factory: ConnectionManagersFactory, settings: DemoSettings
) -> ShardedWebSocketManager:
    """The library's side of the demo: this is how a bot would configure it, with the
    venue's limits scaled down so that a minute shows everything."""
    return await factory.get_sharded_ws_manager(
        codec=BinanceCodec(max_topics_per_message=50),
        max_topics_per_connection=settings.max_topics_per_connection,
        min_send_interval=settings.min_send_interval,
        max_connection_attempts=(60, 10.0),
        restart_policy=RestartPolicy(
            backoff=BackoffPolicy(initial=0.1, cap=0.5, healthy_after=1.0),
            cool_off=settings.cool_off,
        ),
        max_age=settings.max_age,
        rotation_overlap=settings.rotation_overlap,
        dedup_key=lambda data: (data.get("stream"), data.get("seq")),
    )


class _Demo:
    """One run: consume and audit, inject the planned faults, refresh the view."""

    def __init__(
        self,
        settings: DemoSettings,
        plan: tuple[PlannedFault, ...],
        manager: ShardedWebSocketManager,
        venue: ExchangeSimulator,
        proxy: FaultProxy,
        view: DemoView,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self.manager = manager
        self.venue = venue
        self.proxy = proxy
        self.view = view
        self.books: DemoBooks | None = None
        self.audit = StreamAudit()
        self.faults_done = 0
        self.started = time.monotonic()  # for the times shown
        self.streaming_at = self.started  # the duration and the fault times count from here
        self.half_open_detected: list[float] = []  # seconds from blackhole to Disconnected
        self._blackholed_at: float | None = None
        self._half_open_seen = asyncio.Event()
        self._last_recovery: dict[str, float] = {}
        self._last_counts: dict[str, tuple[int, int]] = {}
        self._last_refresh = (self.started, 0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def log(self, text: str, style: str = "") -> None:
        self.view.log(self.elapsed(), text, style)

    async def run(self) -> tuple[AuditReport, bool]:
        """Subscribe, stream for the duration with the faults, wait for rotations in flight;
        returns the audit and whether Ctrl-C cut it short."""
        topics = list(self.settings.topics)
        self.audit.expect(topics)
        self.log(f"subscribing {len(topics)} topics through {self.proxy.url_for('/ws')}")
        result = await self.manager.subscribe_topics(topics)
        self.log(
            f"subscribed: {len(result.accepted)} accepted, {len(result.rejected)} rejected, "
            f"over {self.manager.connections} connections"
        )
        self.streaming_at = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = asyncio.timeout(self.settings.duration)
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            deadline.reschedule(loop.time())

        loop.add_signal_handler(signal.SIGINT, interrupt)
        try:
            async with deadline, asyncio.TaskGroup() as tasks:
                injector = tasks.create_task(self._inject())
                refresher = tasks.create_task(self._refresh_forever())
                books = tasks.create_task(self.books.run()) if self.books else None
                try:
                    await self._consume(audit_messages=True)
                finally:
                    injector.cancel()
                    refresher.cancel()
                    if books is not None:
                        books.cancel()
        except TimeoutError:
            if not deadline.expired():
                raise
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        report = self.audit.report()  # the audit covers the duration, not the wind-down
        if not interrupted and self.audit.rotations_in_flight:
            await self._finish_rotations()
        self.view.update(await self._frame())
        self.log("stopping: closing every connection")
        return report, interrupted

    async def _finish_rotations(self) -> None:
        # disconnect() during a rotation's overlap leaves the old connection open (see the
        # report of this command): let rotations in flight finish first, briefly.
        self.log(f"waiting for {self.audit.rotations_in_flight} rotation(s) to finish")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.rotation_overlap + 2.0):
                await self._consume(audit_messages=False)

    # -- consuming ---------------------------------------------------------------------

    async def _consume(self, *, audit_messages: bool) -> None:
        """Audit every message and event until cancelled; without ``audit_messages``, only
        follow the events until no rotation is in flight.

        (Messages of a batch the manager took from its queue are lost when the iteration is
        cancelled; the audit never resumes after such a cut, so no false gap is seen.)
        """
        audit, manager, now = self.audit, self.manager, time.monotonic
        async for item in manager.iter_messages(events=True):
            if isinstance(item, WebSocketResponse):
                if audit_messages:
                    data = item.data
                    topic = data["stream"]
                    gap = audit.on_message(topic, data["seq"], manager.shard_of(topic), now())
                    if gap is not None and not gap.reported:
                        self.log(
                            f"UNREPORTED GAP {topic}: seq {gap.after} -> "
                            f"{gap.after + gap.missed + 1}",
                            "bold red",
                        )
                continue
            recovery = audit.on_event(item, now())
            self._detect_half_open(item)
            if recovery is not None:
                self._last_recovery[recovery.connection_id] = recovery.seconds
            text, style = describe(item)
            if recovery is not None:
                text += f" (recovered in {recovery.seconds:.2f} s)"
            self.log(text, style)
            if not audit_messages and not audit.rotations_in_flight:
                return

    def _detect_half_open(self, event: ConnectionEvent) -> None:
        if (
            isinstance(event, Disconnected)
            and event.error == "LivenessTimeoutError"
            and self._blackholed_at is not None
        ):
            seconds = time.monotonic() - self._blackholed_at
            self._blackholed_at = None
            self.half_open_detected.append(seconds)
            self._half_open_seen.set()
            self.log(f"half-open connection detected {seconds:.2f} s after the blackhole", "cyan")

    # -- faults ------------------------------------------------------------------------

    async def _inject(self) -> None:
        """Play the fault plan, one fault at a time: each waits for its planned time and for
        a healthy client (every connection open, no rotation in flight, the blackholed
        connection noticed), so that each fault shows its own recovery."""
        for fault in self.plan:
            await asyncio.sleep(max(0.0, self.streaming_at + fault.at - time.monotonic()))
            # A rotation loses nothing (make-before-break): it may come later than the rest.
            latest = self.settings.last_fault_at
            if fault.kind is FaultKind.ROTATE:
                latest = max(latest, self.settings.duration - 1.0)
            await self._healthy(until=self.streaming_at + latest)
            if time.monotonic() - self.streaming_at > latest:
                self.log(f"fault skipped: {fault.kind.value} (no time left to recover)")
                continue
            match fault.kind:
                case FaultKind.ROTATE:
                    await self._rotate(fault.target)
                case FaultKind.CLOSE_1008:
                    self._injected("venue closes every connection with 1008")
                    await self.venue.close_all(1008, "policy violation (demo)")
                case kind:
                    await self._break_one(kind, fault.target, self.streaming_at + latest)

    def _injected(self, what: str) -> None:
        self.audit.on_fault(time.monotonic())
        self.faults_done += 1
        self.log(f"fault: {what}", "bold yellow")

    async def _healthy(self, until: float) -> None:
        """Wait until every connection is open and no rotation is in flight, or ``until``
        (monotonic seconds)."""
        while time.monotonic() < until:
            stats = await self.manager.statistics()
            if all(c.state == "open" for c in stats.connections) and not (
                self.audit.rotations_in_flight
            ):
                return
            await asyncio.sleep(0.05)

    async def _live_link(self, target: int, *, newest: bool = False) -> int | None:
        """A proxied connection that carries data (its bytes grow over a quarter second)
        and is not blackholed, picked by ``target`` (or the newest, the last one its age
        rotates); None if there is none."""
        before = {c.conn_id: c.bytes_to_client for c in self.proxy.connections}
        await asyncio.sleep(0.25)
        live = [
            c.conn_id
            for c in self.proxy.connections
            if not c.blackholed and c.bytes_to_client > before.get(c.conn_id, c.bytes_to_client)
        ]
        if not live:
            return None
        return live[-1] if newest else live[target % len(live)]

    async def _break_one(self, kind: FaultKind, target: int, until: float) -> None:
        """A fault of one connection, seen from the network (the proxy) or the venue.

        A rotation that starts while the link is picked would retire the broken connection
        itself (a blackholed one closed by its rotation is never noticed as half-open), so
        the pick is redone once the rotations are done, until ``until`` (monotonic seconds);
        a blackhole takes the newest connection, the one farthest from its rotation."""
        newest = kind is FaultKind.BLACKHOLE
        link = await self._live_link(target, newest=newest)
        while self.audit.rotations_in_flight and time.monotonic() < until:
            await self._healthy(until=until)
            link = await self._live_link(target, newest=newest)
        if link is None:
            self.log(f"fault skipped: {kind.value} (no connection carries data)", "yellow")
            return
        match kind:
            case FaultKind.RESET:
                self._injected(f"reset of proxied connection #{link} (TCP RST)")
                self.proxy.reset(link)
            case FaultKind.REFUSE_429:
                seconds = self.settings.refuse_seconds
                self._injected(
                    f"venue answers handshakes with 429 for {seconds:g} s; proxied connection "
                    f"#{link} is reset and must reconnect into it"
                )
                self.venue.refuse_for(seconds)
                self.proxy.reset(link)
            case FaultKind.BLACKHOLE:
                self._injected(
                    f"blackhole on proxied connection #{link}: half-open, silent, no FIN or "
                    f"RST; a ping after {self.settings.ping_interval:g} s of silence, "
                    f"unanswered within {self.settings.pong_timeout:g} s, should notice"
                )
                self._half_open_seen.clear()
                self._blackholed_at = time.monotonic()
                self.proxy.blackhole(conn_id=link)
                timeout = self.settings.ping_interval + self.settings.pong_timeout + 1.0
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._half_open_seen.wait()

    async def _rotate(self, target: int) -> None:
        """Rotate one open connection on demand (``max_age`` rotates the others by age)."""
        stats = await self.manager.statistics()
        ids = [c.connection_id for c in stats.connections if c.state == "open"]
        if not ids:
            self.log("fault skipped: rotation (no connection is open)", "yellow")
            return
        connection_id = ids[target % len(ids)]
        self._injected(f"rotation of {connection_id} requested")
        try:
            await self.manager.rotate(connection_id)
        except Exception as exc:  # e.g. the replacement's handshake refused
            self.log(f"rotation of {connection_id} failed: {exc}", "bold red")

    # -- the view ----------------------------------------------------------------------

    async def _refresh_forever(self) -> None:
        while True:
            self.view.update(await self._frame())
            await asyncio.sleep(REFRESH_INTERVAL)

    async def _frame(self) -> Frame:
        stats = await self.manager.statistics()
        now = time.monotonic()
        report = self.audit.report()
        since, before = self._last_refresh
        dt = max(now - since, 1e-6)
        self._last_refresh = (now, report.messages)
        return Frame(
            elapsed=now - self.started,
            streamed=max(0.0, now - self.streaming_at),
            duration=self.settings.duration,
            rows=tuple(self._rows(stats, dt)),
            messages=report.messages,
            rate=(report.messages - before) / dt,
            reconnects=report.reconnects,
            rotations=report.rotations,
            reported_gaps=report.reported_gaps,
            missed_messages=report.missed_messages,
            unreported_gaps=len(report.unreported_gaps),
            worst_recovery=report.worst_recovery,
            faults_done=self.faults_done,
            faults_total=len(self.plan),
            venue_429=self.venue.http_429_sent,
            venue_violations=self.venue.violations,
            queue_depth=stats.queue_depth,
            books=self.books.row() if self.books is not None else None,
        )

    def _rows(self, stats: ShardedStatistics, dt: float) -> Iterator[ConnectionRow]:
        gaps: dict[str | None, int] = {}
        for gap in self.audit.gaps:
            gaps[gap.connection_id] = gaps.get(gap.connection_id, 0) + 1
        for c in stats.connections:
            before_in, before_out = self._last_counts.get(c.connection_id, (0, 0))
            self._last_counts[c.connection_id] = (c.messages_in, c.messages_out)
            yield ConnectionRow(
                connection_id=c.connection_id,
                state=c.state,
                age=c.uptime,
                topics=c.topics,
                messages_in=c.messages_in,
                in_rate=max(0, c.messages_in - before_in) / dt,
                messages_out=c.messages_out,
                out_rate=max(0, c.messages_out - before_out) / dt,
                restarts=c.restarts,
                gaps=gaps.get(c.connection_id, 0),
                last_recovery=self._last_recovery.get(c.connection_id),
                last_error=c.last_error,
            )


def describe(event: ConnectionEvent) -> tuple[str, str]:
    """One readable line (and a ``rich`` style) for a lifecycle event."""
    match event:
        case Connected(connection_id=cid):
            return f"{cid} connected", "green"
        case Disconnected(connection_id=cid, cause=cause, code=code):
            where = f" [close {int(code)}]" if code is not None else ""
            return f"{cid} disconnected{where}: {cause}", "red"
        case Reconnected(connection_id=cid, attempts=attempts, downtime=downtime):
            return (
                f"{cid} reconnected after {attempts} attempt(s), down {downtime:.2f} s; "
                "replaying its subscriptions",
                "green",
            )
        case RotationStarted(connection_id=old, replacement=new):
            return f"rotation: {new} replaces {old} (both deliver for a moment)", "cyan"
        case RotationFinished(connection_id=old, replacement=new, duplicates_removed=dups):
            return f"rotation done: {old} closed, {new} alone ({dups} duplicates removed)", "cyan"
        case GaveUp(connection_id=cid, cause=cause):
            return f"{cid} GAVE UP: {cause}", "bold red"
        case MessagesDropped(count=count):
            return f"{count} messages dropped by a full queue", "bold red"
    return repr(event), ""


def summary(
    settings: DemoSettings,
    seed: int,
    report: AuditReport,
    venue: ExchangeSimulator,
    *,
    faults: tuple[int, int],
    half_open_detected: list[float],
    interrupted: bool,
    books: DemoBooks | None = None,
) -> list[str]:
    """The closing lines, each ``name: value``; the last one says OK or FAILED."""
    worst = report.worst_recovery
    median = report.median_recovery
    ok = report.ok and venue.violations == 0 and not interrupted and (books is None or books.ok)
    lost = ", ".join(report.topics_lost[:5]) + (" ..." if len(report.topics_lost) > 5 else "")
    return [
        "",
        f"summary (seed {seed}, {len(settings.topics)} topics, up to "
        f"{settings.max_topics_per_connection} per connection, "
        f"{settings.duration:g} s{', interrupted' if interrupted else ''}):",
        f"  faults injected: {faults[0]} of {faults[1]}",
        f"  messages received: {report.messages}",
        f"  reconnects: {report.reconnects}",
        f"  rotations: {report.rotations} ({report.duplicates_removed} duplicates removed)",
        "  worst recovery: "
        + (f"{worst.seconds:.3f} s ({worst.connection_id}, {worst.cause})" if worst else "-")
        + (f"; median {median:.3f} s over {len(report.recoveries)}" if median is not None else ""),
        f"  reported gaps: {report.reported_gaps} ({report.missed_messages} messages missed "
        "while disconnected)",
        f"  out of order: {report.out_of_order}",
        "  half-open connection detected after: "
        + (", ".join(f"{s:.2f} s" for s in half_open_detected) or "-")
        + f" (ping_interval {settings.ping_interval:g} s + pong_timeout "
        f"{settings.pong_timeout:g} s)",
        f"  venue: {venue.connections_accepted} handshakes accepted, "
        f"{venue.http_429_sent} refused with 429, {venue.violations} rate-limit violations",
        f"  connections still down: {len(report.still_down)}",
        f"  connections given up: {len(report.gave_up)}",
        f"  topics lost: {len(report.topics_lost)}" + (f" ({lost})" if lost else ""),
        f"  unreported gaps: {len(report.unreported_gaps)}",
        *(books.summary() if books is not None else ()),
        f"result: {'interrupted' if interrupted else 'OK' if ok else 'FAILED'}",
    ]


class _ViewHandler(logging.Handler):
    """Library log records as event lines of the view (one line, no traceback)."""

    def __init__(self, view: DemoView, started: float) -> None:
        super().__init__()
        self._view, self._started = view, started

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({record.exc_info[1]!r})"
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        self._view.log(time.monotonic() - self._started, text, style)


@contextlib.contextmanager
def _log_into(view: DemoView, verbose: bool) -> Iterator[None]:
    """Send the library's log records to the view while the demo runs: WARNING and up, or
    INFO and up with ``--verbose``."""
    root = logging.getLogger()
    handler = _ViewHandler(view, time.monotonic())
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level, handler.level) if old_level else handler.level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
