"""How the demo shows itself: a live terminal view with ``rich``, or plain log lines.

Both views take the same :class:`Frame` (a snapshot the demo builds a few times a second)
and the same event lines; the demo does not know which one it talks to.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from networkpype.cli.audit import Recovery
from networkpype.cli.demo_books import BookRow

__all__ = ["ConnectionRow", "DemoView", "Frame", "PlainView", "RichView"]

_URL = re.compile(r"wss?://\S+: ")  # errors name the URL, the same on every row


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """One connection of the sharded manager; rates are per second over the last refresh."""

    connection_id: str
    state: str
    age: float
    topics: int
    messages_in: int
    in_rate: float
    messages_out: int
    out_rate: float
    restarts: int
    gaps: int
    last_recovery: float | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything the views show at one moment; seconds for times."""

    elapsed: float  # since the demo started
    streamed: float  # since the subscriptions were acknowledged: the run's own clock
    duration: float
    rows: tuple[ConnectionRow, ...]
    messages: int
    rate: float
    reconnects: int
    rotations: int
    reported_gaps: int
    missed_messages: int
    unreported_gaps: int
    worst_recovery: Recovery | None
    faults_done: int
    faults_total: int
    venue_429: int
    venue_violations: int
    queue_depth: int
    books: BookRow | None = None  # the order books, when the demo keeps some


class DemoView(Protocol):
    """What the demo calls: ``log`` an event line, ``update`` the numbers."""

    def log(self, elapsed: float, text: str, style: str = "") -> None: ...

    def update(self, frame: Frame) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _books_status(books: BookRow | None) -> str:
    if books is None:
        return ""
    return (
        f"; books {books.valid}/{books.books} valid, {books.resyncs} resyncs, "
        f"{books.served_wrong} served wrong"
    )


def _worst(recovery: Recovery | None) -> str:
    if recovery is None:
        return "-"
    return f"{recovery.seconds:.2f} s ({recovery.connection_id}, {recovery.cause})"


class PlainView:
    """Timestamped lines on ``out`` (stdout): every event, and a status line each
    ``status_interval`` seconds. ``quiet`` prints nothing (the summary still comes)."""

    def __init__(
        self, out: TextIO | None = None, *, status_interval: float = 1.0, quiet: bool = False
    ) -> None:
        self._out = out or sys.stdout
        self._interval = status_interval
        self._next_status = status_interval
        self._quiet = quiet

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._out.flush()

    def log(self, elapsed: float, text: str, style: str = "") -> None:
        if not self._quiet:
            print(f"[{elapsed:6.2f}s] {text}", file=self._out, flush=True)

    def update(self, frame: Frame) -> None:
        if frame.elapsed < self._next_status:
            return
        self._next_status = frame.elapsed + self._interval
        up = sum(1 for r in frame.rows if r.state == "open")
        self.log(
            frame.elapsed,
            f"status: {up}/{len(frame.rows)} connections open, {frame.messages} messages "
            f"({frame.rate:.0f}/s), {frame.reconnects} reconnects, {frame.rotations} rotations, "
            f"gaps {frame.reported_gaps} reported / {frame.unreported_gaps} unreported, "
            f"worst recovery {_worst(frame.worst_recovery)}" + _books_status(frame.books),
        )


class RichView:
    """A ``rich.live.Live`` view: connections, totals and the latest events, redrawn on each
    ``update``. The last frame stays on the terminal when it stops."""

    def __init__(self, title: str, *, min_send_interval: float, console: Console | None = None):
        self._title = title
        self._pace = min_send_interval
        self._console = console or Console()
        self._events: deque[Text] = deque(maxlen=12)
        self._frame: Frame | None = None
        self._live = Live(
            console=self._console, auto_refresh=False, redirect_stdout=False, transient=False
        )

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._redraw()
        self._live.stop()

    def log(self, elapsed: float, text: str, style: str = "") -> None:
        line = Text(f"{elapsed:6.2f}s ", style="dim")
        line.append(text, style=style)
        self._events.append(line)
        self._redraw()

    def update(self, frame: Frame) -> None:
        self._frame = frame
        self._redraw()

    def _redraw(self) -> None:
        self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        frame = self._frame
        parts: list[Panel | Table] = []
        if frame is not None:
            parts.append(self._connections(frame))
            parts.append(self._totals(frame))
        events = Table.grid()
        for line in self._events:
            events.add_row(line)
        parts.append(Panel(events, title="events", title_align="left", border_style="dim"))
        return Group(*parts)

    def _connections(self, frame: Frame) -> Table:
        table = Table(
            title=f"{self._title} - {frame.streamed:4.1f} / {frame.duration:g} s",
            title_justify="left",
            caption=f"outbound frames paced at least {self._pace:g} s apart per connection; "
            f"{frame.queue_depth} messages queued for the consumer",
            caption_justify="left",
            expand=True,
        )
        for name, justify in (
            ("connection", "left"),
            ("state", "left"),
            ("age", "right"),
            ("topics", "right"),
            ("msgs in", "right"),
            ("in/s", "right"),
            ("sent", "right"),
            ("sent/s", "right"),
            ("restarts", "right"),
            ("gaps", "right"),
            ("last recovery", "right"),
            ("last error", "left"),
        ):
            error = name == "last error"
            table.add_column(
                name,
                justify=justify,  # type: ignore[arg-type]
                no_wrap=True,
                overflow="ellipsis",
                min_width=None if error else max(len(name), 7 if name == "age" else 0),
                max_width=40 if error else None,
            )
        for row in frame.rows:
            state_style = "green" if row.state == "open" else "bold red"
            table.add_row(
                row.connection_id,
                Text(row.state, style=state_style),
                f"{row.age:.1f} s",
                str(row.topics),
                str(row.messages_in),
                f"{row.in_rate:.0f}",
                str(row.messages_out),
                f"{row.out_rate:.1f}",
                str(row.restarts),
                str(row.gaps),
                _seconds(row.last_recovery),
                Text(_URL.sub("", row.last_error or ""), style="yellow"),
            )
        return table

    def _totals(self, frame: Frame) -> Table:
        table = Table.grid(padding=(0, 2))
        unreported = Text(
            str(frame.unreported_gaps), style="bold red" if frame.unreported_gaps else "green"
        )
        violations = Text(
            str(frame.venue_violations), style="bold red" if frame.venue_violations else "green"
        )
        table.add_row(
            "messages", f"{frame.messages} ({frame.rate:.0f}/s)",
            "reconnects", str(frame.reconnects),
            "rotations", str(frame.rotations),
        )  # fmt: skip
        table.add_row(
            "gaps reported", f"{frame.reported_gaps} ({frame.missed_messages} msgs missed)",
            "unreported gaps", unreported,
            "worst recovery", _worst(frame.worst_recovery),
        )  # fmt: skip
        table.add_row(
            "faults", f"{frame.faults_done}/{frame.faults_total}",
            "venue 429s", str(frame.venue_429),
            "rate-limit violations", violations,
        )  # fmt: skip
        books = frame.books
        if books is not None:
            wrong = Text(
                str(books.served_wrong), style="bold red" if books.served_wrong else "green"
            )
            valid = Text(
                f"{books.valid}/{books.books}",
                style="green" if books.valid == books.books else "yellow",
            )
            p50 = "-" if books.p50 is None else f"{books.p50 * 1000:.0f} ms"
            table.add_row(
                "books valid", valid,
                "resyncs", f"{books.resyncs} (break -> valid p50 {p50})",
                "books served wrong", wrong,
            )  # fmt: skip
        return table
