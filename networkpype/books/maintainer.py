"""``OrderBookMaintainer``: order books kept correct over a sharded manager and a REST
manager, resynced by themselves after every break.

Each book follows its topic's stream (``ShardedWebSocketManager.stream(topic)``, which
carries its shard's gap events in order with the data) and joins it with a REST snapshot
the way the venue's plug-in (:mod:`networkpype.books.rules`) says. A book is marked not
valid the moment anything breaks it: a sequence gap or a bad checksum in the data, a
``Disconnected``/``Reconnected``/``MessagesDropped``/``GaveUp`` event, a topic lost in a
rotation, a diff that cannot be read. It then resyncs by itself: the diffs after the break
are buffered, a snapshot is fetched through the snapshot queue (a few at a time, each
through the ``RESTManager`` and its throttler, so a mass break becomes a paced stream of
requests within the venue's weights), and the book is valid again once a diff bridging the
snapshot has been applied. A subscription the venue refused (or lost without a word: no
data while the connection is open) is subscribed again with a backoff.

The consumer reads ``book(symbol)`` (a :class:`~networkpype.books.views.LiveBook`: ``valid``,
``top()``, ``depth(n)``, which hand out nothing while the book is not valid), waits with
``wait_valid()``, and follows ``events()`` (``BookInvalid``, ``BookResynced``). An
``on_update(book)`` callback runs after every change of a valid book.

The maintainer reads every stream of the manager it is given, its merged stream too (what
no book claims is counted and dropped): give it a sharded manager of its own. Any other
:class:`~networkpype.books.source.DiffSource` serves as well: ``networkpype.bus.BusDiffSource``
reads the diffs the collectors publish to the market-data bus (its gap records are
``StreamBreak`` messages, which invalidate the book like the events above); the snapshots
still come over REST from the venue.

Tasks: ``start()`` starts one task that owns every other (snapshot workers, the watchdog,
the resubscriber, the drain of unclaimed messages, one follower per book); ``aclose()``
cancels it and waits. If that task fails (a setting the throttler does not know, say),
every book is reported not valid and ``events()``/``wait_valid()`` raise the error.

Logging: DEBUG for each book's transitions; INFO for failed snapshot requests;
WARNING for refused subscriptions and the venue's 429/418 answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec

from networkpype.actors.delivery import DeliveryQueue, QueueClosed
from networkpype.books._entry import BookEntry
from networkpype.books._snapshots import SnapshotQueue
from networkpype.books._subscriptions import Resubscriber
from networkpype.books.errors import BookDataError, UnknownBookError
from networkpype.books.events import BookEvent, BookInvalid, BookResynced
from networkpype.books.rules import VenueRules
from networkpype.books.settings import BookSettings
from networkpype.books.source import DiffSource, ShardedSource, StreamBreak
from networkpype.books.sync import BookSync, Change
from networkpype.books.views import BookState, LiveBook
from networkpype.protocol.errors import ConfigurationError, GaveUpError, RetryableError
from networkpype.protocol.events import (
    Disconnected,
    GaveUp,
    MessagesDropped,
    Reconnected,
    RotationFinished,
    TopicsLost,
)
from networkpype.protocol.redaction import redact_url
from networkpype.rest.errors import RESTDecodeError, RESTStatusError
from networkpype.rest.manager import RESTManager
from networkpype.runtime import cancel_and_wait
from networkpype.websocket.sharded import ShardedWebSocketManager
from networkpype.wire.response import WebSocketResponse

__all__ = ["MaintainerStatistics", "OrderBookMaintainer"]

logger = logging.getLogger(__name__)


class MaintainerStatistics(msgspec.Struct, frozen=True):
    """A frozen snapshot of a maintainer: ``valid`` books of ``books``; ``resyncs`` over all
    books; ``snapshots_requested``/``snapshot_failures``/``snapshots_rate_limited`` (answers
    429/418); ``queued``/``in_flight`` snapshots now; ``resubscriptions``;
    ``unclaimed_messages`` (no book's); ``events_dropped`` (nobody read ``events()``);
    ``update_errors`` (``on_update`` raised); one ``BookState`` per book."""

    books: int
    valid: int
    resyncs: int
    snapshots_requested: int
    snapshot_failures: int
    snapshots_rate_limited: int
    queued: int
    in_flight: int
    resubscriptions: int
    unclaimed_messages: int
    events_dropped: int
    update_errors: int
    states: tuple[BookState, ...]


class OrderBookMaintainer:
    """Order books of ``rules``' venue over ``ws_manager`` (a sharded manager, connected,
    of the maintainer's own; or any :class:`~networkpype.books.source.DiffSource`, such as
    ``networkpype.bus.BusDiffSource`` for diffs read from the market-data bus) and
    ``rest_manager``; snapshots from ``rest_url`` (``http://`` or
    ``https://``, no trailing path: the plug-in gives the path). See the module docstring.

    ``settings``: :class:`~networkpype.books.settings.BookSettings`. ``on_update(book)``:
    called after every change of a valid book (keep it short; what it returns is ignored,
    an exception is logged and counted). ``clock``: monotonic seconds.
    """

    def __init__(
        self,
        ws_manager: ShardedWebSocketManager | DiffSource,
        rest_manager: RESTManager,
        rules: VenueRules,
        rest_url: str,
        *,
        settings: BookSettings | None = None,
        on_update: Callable[[LiveBook], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rest_url.startswith(("http://", "https://")):
            shown = redact_url(rest_url)  # it may carry an API key (issue 9)
            raise ConfigurationError(f"rest_url must be an http:// or https:// URL: {shown!r}")
        self._ws: DiffSource = (
            ShardedSource(ws_manager)
            if isinstance(ws_manager, ShardedWebSocketManager)
            else ws_manager
        )
        self._rest = rest_manager
        self._rules = rules
        self._rest_url = rest_url.rstrip("/")
        self._settings = settings or BookSettings()
        self._on_update = on_update
        self._clock = clock
        self._books: dict[str, BookEntry] = {}
        self._snapshots = SnapshotQueue(self._fetch, self._settings.snapshot_concurrency, clock)
        self._events: DeliveryQueue[BookEvent] = DeliveryQueue(
            self._settings.max_events, "drop_oldest", droppable=lambda _: True
        )
        self._changed = asyncio.Event()  # set at each validation (for wait_valid)
        self._resubscriber = Resubscriber(self._ws, self._settings, clock, self._invalidate)
        self._runner: asyncio.Task[None] | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._failure: BaseException | None = None
        self._stopped = False
        self._snapshot_failures = 0
        self._rate_limited = 0
        self._unclaimed = 0
        self._update_errors = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the maintainer's tasks; returns once they run. Idempotent."""
        if self._runner is not None:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(ready), name="networkpype-books"
        )
        await asyncio.shield(ready)

    async def aclose(self) -> None:
        """Stop every task (the books stop being valid); the managers stay as they are.
        Idempotent."""
        self._stopped = True
        runner, self._runner = self._runner, None
        await cancel_and_wait(runner)
        self._events.close()
        self._changed.set()

    async def __aenter__(self) -> OrderBookMaintainer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._snapshots.run(), name="networkpype-books-snapshots")
                tasks.create_task(
                    self._resubscriber.watch(self._books.values), name="networkpype-books-watchdog"
                )
                tasks.create_task(self._resubscriber.run(), name="networkpype-books-resubscriber")
                tasks.create_task(self._drain_unclaimed(), name="networkpype-books-unclaimed")
                ready.set_result(None)
        except Exception as exc:
            error: Exception = exc
            while isinstance(error, ExceptionGroup):  # task groups nest: the first cause
                error = error.exceptions[0]
            self._failure = error
            logger.error("order-book maintainer failed: every book is not valid", exc_info=error)
            self._events.fail(error)
            self._events.close()
            self._changed.set()
            if not ready.done():
                ready.set_exception(error)
        finally:
            self._tasks = None

    def _failed(self) -> bool:
        return self._stopped or self._failure is not None

    # -- books -------------------------------------------------------------------------

    async def add(self, symbols: Iterable[str]) -> dict[str, str]:
        """Keep books for ``symbols`` (case-insensitive; kept upper-case): subscribe their
        topics and start syncing. Returns the symbols whose topic the venue refused, with
        its reason (those books are not kept). Symbols kept already are left alone.
        ``ConfigurationError`` for a symbol that is not alphanumeric."""
        if self._tasks is None:
            raise ConfigurationError("call start() (or use `async with`) before add()")
        new: list[BookEntry] = []
        for raw in symbols:
            symbol = raw.upper() if isinstance(raw, str) else ""
            if not symbol.isalnum():
                raise ConfigurationError(f"a symbol is alphanumeric, like 'BTCUSDT': {raw!r}")
            if symbol in self._books or any(e.symbol == symbol for e in new):
                continue
            sync = BookSync(
                symbol, self._rules, self._clock(), max_buffer=self._settings.max_buffer
            )
            topic = self._rules.topic(symbol)
            handle = LiveBook(sync, topic, self._failed, self._clock)
            new.append(BookEntry(sync, topic, handle, self._clock()))
        for entry in new:  # every stream exists before its first message can come
            self._books[entry.symbol] = entry
            entry.set_stream(self._ws.stream(entry.topic))
            entry.task = self._tasks.create_task(
                self._follow(entry), name=f"networkpype-book-{entry.symbol}"
            )
        if not new:
            return {}
        rejected = await self._ws.subscribe_topics(e.topic for e in new)
        refused: dict[str, str] = {}
        for entry in new:
            reason = rejected.get(entry.topic)
            if reason is not None:
                refused[entry.symbol] = reason
                self._forget(entry)
        if refused:
            logger.warning("venue refused the books of %s", refused)
        return refused

    async def remove(self, symbols: Iterable[str]) -> None:
        """Stop keeping the books of ``symbols`` (unknown ones are ignored) and unsubscribe
        their topics."""
        gone = [e for s in symbols if (e := self._books.get(s.upper())) is not None]
        for entry in gone:
            self._forget(entry)
        if gone:
            await self._ws.unsubscribe_topics(e.topic for e in gone)

    def _forget(self, entry: BookEntry) -> None:
        self._books.pop(entry.symbol, None)
        self._resubscriber.cancel(entry)
        self._snapshots.cancel(entry.symbol)
        entry.removed = True
        entry.sync.invalidate("removed", self._clock())
        if entry.task is not None:
            entry.task.cancel()

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols kept, in the order they were added."""
        return tuple(self._books)

    def book(self, symbol: str) -> LiveBook:
        """The live handle of ``symbol``'s book; ``UnknownBookError`` if it is not kept."""
        entry = self._books.get(symbol.upper())
        if entry is None:
            raise UnknownBookError(f"no book is kept for {symbol!r}: add() it first")
        return entry.handle

    def books(self) -> tuple[LiveBook, ...]:
        """Every kept book's handle."""
        return tuple(e.handle for e in self._books.values())

    async def wait_valid(
        self,
        symbols: Iterable[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline for the whole wait)
    ) -> None:
        """Return once every book of ``symbols`` (default: all kept) is valid at the same
        time; ``TimeoutError`` after ``timeout`` seconds; the maintainer's error if it
        failed."""
        handles = [self.book(s) for s in symbols] if symbols is not None else None
        async with asyncio.timeout(timeout):
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._stopped:
                    raise ConfigurationError("the maintainer is closed")
                current = handles if handles is not None else self.books()
                if all(h.valid for h in current):
                    return
                self._changed.clear()
                await self._changed.wait()

    async def events(self) -> AsyncIterator[BookEvent]:
        """``BookInvalid`` and ``BookResynced`` events in the order they happened, until
        ``aclose()``; raises the maintainer's error if it failed. One reader at a time."""
        while True:
            try:
                yield await self._events.get()
            except QueueClosed:
                return

    # -- following a book's stream --------------------------------------------------------

    async def _follow(self, entry: BookEntry) -> None:
        """Consume the book's stream; after it ends (a shard given up, a resubscription),
        take the next one."""
        while True:
            stream = await entry.next_stream()
            try:
                async for item in stream:
                    if isinstance(item, WebSocketResponse):
                        self._on_data(entry, item.data)
                    else:
                        self._on_event(entry, item)
            except GaveUpError as exc:
                entry.stream_ended = True
                self._invalidate(entry, f"connection given up: {exc}")
                self._resubscriber.request(entry)
                continue
            entry.stream_ended = True
            if entry.healing:
                continue  # the resubscriber ended it, and makes the next
            self._invalidate(entry, "the topic's stream ended (unsubscribed or disconnected)")
            return

    def _on_data(self, entry: BookEntry, data: Any) -> None:
        now = self._clock()
        entry.last_data = now
        try:
            diff = self._rules.parse_diff(data)
        except BookDataError as exc:
            self._after(entry, entry.sync.invalidate(str(exc), now))
            return
        self._after(entry, entry.sync.on_diff(diff, now))

    def _on_event(self, entry: BookEntry, event: Any) -> None:
        match event:
            case Disconnected(connection_id=shard, cause=cause):
                entry.connected = False
                self._invalidate(entry, f"{shard} disconnected: {cause}")
            case Reconnected(connection_id=shard, downtime=downtime):
                entry.connected = True
                entry.quiet_from = self._clock()
                self._invalidate(entry, f"{shard} reconnected after {downtime:.3f} s")
            case MessagesDropped(count=count):
                self._invalidate(entry, f"{count} messages dropped by a full queue")
            case GaveUp(connection_id=shard, cause=cause, topics=topics):
                if entry.topic in topics:
                    entry.stream_ended = True  # it ends with the GaveUpError next
                self._invalidate(entry, f"{shard} given up: {cause}")
            case RotationFinished(connection_id=old):
                if self._ws.shard_of(entry.topic) is None:
                    self._invalidate(entry, f"subscription lost in the rotation of {old}")
                    self._resubscriber.request(entry)
            case StreamBreak(reason=reason):
                self._invalidate(entry, reason)
            case TopicsLost(topics=topics, reason=reason) if entry.topic in topics:
                # The manager will not subscribe it again by itself (refused to a rotation's
                # replacement, say); its stream ends after this event.
                entry.stream_ended = True
                self._invalidate(entry, f"subscription lost: {reason}")
                self._resubscriber.request(entry)

    def _invalidate(self, entry: BookEntry, reason: str) -> None:
        self._after(entry, entry.sync.invalidate(reason, self._clock()))

    def _after(self, entry: BookEntry, change: Change) -> None:
        """Tell the consumer about ``change``; ask for a snapshot when one is needed."""
        sync = entry.sync
        if change is Change.UPDATED:
            self._updated(entry)
        elif change is Change.INVALIDATED:
            logger.debug("book %s not valid: %s", entry.symbol, sync.reason)
            self._emit(
                BookInvalid(
                    symbol=entry.symbol,
                    at=time.time(),
                    reason=sync.reason,
                    update_id=sync.book.update_id,
                )
            )
        elif change is Change.VALIDATED:
            entry.snapshot_failures = 0
            logger.debug(
                "book %s valid at %d after %.3f s",
                entry.symbol,
                sync.book.update_id,
                sync.last_invalid_for,
            )
            self._emit(
                BookResynced(
                    symbol=entry.symbol,
                    at=time.time(),
                    update_id=sync.book.update_id,
                    invalid_for=sync.last_invalid_for,
                    resyncs=sync.resyncs,
                    snapshots=sync.snapshots,
                    first=sync.validations == 1,
                )
            )
            self._changed.set()
            self._updated(entry)
        if sync.needs_snapshot:
            self._snapshots.request(entry.symbol)

    def _updated(self, entry: BookEntry) -> None:
        callback = self._on_update
        if callback is None:
            return
        try:
            callback(entry.handle)
        except Exception:
            self._update_errors += 1
            logger.exception("on_update raised for %s", entry.symbol)

    def _emit(self, event: BookEvent) -> None:
        if not self._events.closed:
            self._events.offer(event)

    # -- snapshots ---------------------------------------------------------------------

    async def _fetch(self, symbol: str) -> float | None:
        """Fetch and apply ``symbol``'s snapshot; the delay before it should be fetched
        again, or None."""
        entry = self._books.get(symbol)
        if entry is None or not entry.sync.needs_snapshot:
            return None
        request = self._rules.snapshot_request(symbol)
        try:
            payload = await self._rest.execute_request(
                self._rest_url + request.path,
                request.limit_id,
                params=request.params,
                timeout=self._settings.snapshot_timeout,
            )
            snapshot = self._rules.parse_snapshot(payload)
        except RESTStatusError as exc:
            if exc.status in (418, 429):
                self._rate_limited += 1
                seconds = exc.retry_after if exc.retry_after is not None else 1.0
                logger.warning(
                    "snapshot of %s answered %d: no snapshot for %.1f s",
                    symbol,
                    exc.status,
                    seconds,
                )
                self._snapshots.pause_for(seconds)
                return 0.0
            return self._fetch_failed(entry, exc)
        except (
            BookDataError,
            RESTDecodeError,
            RetryableError,
            ConnectionError,
            TimeoutError,
        ) as exc:
            return self._fetch_failed(entry, exc)
        if entry.removed:
            return None
        self._after(entry, entry.sync.on_snapshot(snapshot, self._clock()))
        if entry.sync.needs_snapshot:  # older than the stream, or refused: again, later
            entry.snapshot_failures += 1
            return self._settings.retry_delay(entry.snapshot_failures)
        return None

    def _fetch_failed(self, entry: BookEntry, error: Exception) -> float:
        self._snapshot_failures += 1
        entry.snapshot_failures += 1
        delay = self._settings.retry_delay(entry.snapshot_failures)
        logger.info("snapshot of %s failed (%s); again in %.2f s", entry.symbol, error, delay)
        return delay

    async def _drain_unclaimed(self) -> None:
        """Read the merged stream, which carries what no book's stream claims (a stray
        message after an unsubscribe, say), so that it never fills up; a source without
        one (the bus) has nothing to drain."""
        unclaimed = self._ws.unclaimed()
        if unclaimed is None:
            return
        async for _ in unclaimed:
            self._unclaimed += 1

    # -- statistics --------------------------------------------------------------------

    def statistics(self) -> MaintainerStatistics:
        """A frozen snapshot of the maintainer and of every book."""
        now = self._clock()
        states = tuple(e.state(now, self._ws.shard_of(e.topic)) for e in self._books.values())
        return MaintainerStatistics(
            books=len(states),
            valid=sum(1 for e in self._books.values() if e.handle.valid),
            resyncs=sum(s.resyncs for s in states),
            snapshots_requested=self._snapshots.requested,
            snapshot_failures=self._snapshot_failures,
            snapshots_rate_limited=self._rate_limited,
            queued=len(self._snapshots),
            in_flight=self._snapshots.in_flight,
            resubscriptions=self._resubscriber.resubscriptions,
            unclaimed_messages=self._unclaimed,
            events_dropped=self._events.dropped,
            update_errors=self._update_errors,
            states=states,
        )
