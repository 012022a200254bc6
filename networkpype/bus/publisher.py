"""``BusPublisher``: asynchronous JetStream publishing with a bounded buffer and a bounded
window of unacknowledged messages, on a NATS connection of its own.

``publish_nowait()`` never waits: the message goes into a buffer of at most
``max_buffer`` messages. A task owned by the caller (:meth:`run`) sends the buffer in order,
with at most ``max_in_flight`` messages unacknowledged by JetStream. What is not
acknowledged within ``ack_timeout`` seconds, or was in flight when the connection broke, or
was answered with a server error (5xx: no stream yet, JetStream restarting, a clustered
stream electing its leader), is sent again, in order, under the same message id:
JetStream's de-duplication makes the re-send harmless. After a server error nothing newer
is sent until everything unacknowledged has been sent again (``_RETRY_DELAY`` later), so
that a message is not stored behind later ones of its topic (a consumer would take it for
stale); only what was already in flight when the error came may be stored ahead of it.
Nothing is published while NATS is unreachable; the buffer fills. A message JetStream
refuses for good (4xx) is logged and reported like a dropped one.

When the buffer is full, the oldest message is dropped. Never silently: the drop is counted
per topic (with the first and last sequence numbers dropped), logged at WARNING, and once
NATS is back a :class:`~networkpype.bus.records.PublishDropped` record per topic is
published ahead of that topic's remaining messages, so consumers learn what the bus never
got. ``statistics()`` counts every outcome.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from networkpype.bus._nats import discard_unsent, raise_if_cancelled
from networkpype.protocol.errors import ConfigurationError

__all__ = ["BusPublisher", "DropNotice", "PublishSettings", "PublisherStatistics"]

logger = logging.getLogger(__name__)

_NO_RESPONDERS = "503"  # no stream took the message (yet: JetStream is still starting)
_RETRY_DELAY = 0.5  # seconds before a message no stream took is sent again
_WARN_INTERVAL = 5.0  # seconds between two WARNING lines about drops


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """``max_buffer``: messages kept while they cannot be sent (the bound of the drop
    policy); ``max_in_flight``: messages sent but not yet acknowledged; ``ack_timeout``:
    seconds after which an unacknowledged message is sent again."""

    max_buffer: int = 100_000
    max_in_flight: int = 1_000
    ack_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.max_buffer < 1 or self.max_in_flight < 1:
            raise ConfigurationError("max_buffer and max_in_flight must be at least 1")
        if not self.ack_timeout > 0:
            raise ConfigurationError(f"ack_timeout must be > 0 s, got {self.ack_timeout}")


@dataclass(frozen=True, slots=True)
class PublisherStatistics:
    """A snapshot. ``published``: messages acknowledged as stored; ``duplicates``:
    acknowledged as duplicates (another collector or an earlier send had stored them);
    ``resent``: sends after the first; ``dropped``: messages dropped from a full buffer
    (``records_dropped`` of them records); ``rejected``: refused by JetStream (an error
    answer; logged); ``buffered``/``in_flight``: now; ``connected``: the NATS link."""

    published: int
    duplicates: int
    resent: int
    dropped: int
    records_dropped: int
    rejected: int
    buffered: int
    in_flight: int
    connected: bool


@dataclass(slots=True)
class DropNotice:
    """Messages of one topic dropped since the last notice was published."""

    count: int = 0
    first_seq: int | None = None
    last_seq: int | None = None


@dataclass(slots=True)
class _Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str]
    topic: str | None  # None: not counted per topic when dropped
    seq: int | None
    record: bool
    sent_at: float = 0.0
    sends: int = 0


class _Ack(msgspec.Struct):
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False
    error: dict[str, Any] | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


class BusPublisher:
    """See the module docstring. ``nc`` must be a connection of the publisher's own (its
    unsent leftovers are discarded after a break) made with :func:`networkpype.bus._nats.
    connect` and ``on_disconnected=publisher.on_disconnected``,
    ``on_reconnected=publisher.on_reconnected``; ``drop_notice`` turns a topic's dropped
    messages into the message that reports them (subject, payload, headers)."""

    def __init__(
        self,
        settings: PublishSettings,
        drop_notice: Callable[[str, DropNotice], tuple[str, bytes, dict[str, str]]],
    ) -> None:
        self._settings = settings
        self._drop_notice = drop_notice
        self._nc: NATS | None = None
        self._inbox = ""
        self._buffer: deque[_Outgoing] = deque()
        self._in_flight: dict[int, _Outgoing] = {}  # insertion order is send order
        self._tokens = itertools.count(1)
        self._drops: dict[str, DropNotice] = {}
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._resend_all = False
        self._retry_at: float | None = None  # monotonic time of the re-send after a 5xx
        self._idle = asyncio.Event()
        self._idle.set()
        self._published = self._duplicates = self._resent = 0
        self._dropped = self._records_dropped = self._rejected = 0
        self._last_warning = -_WARN_INTERVAL

    # -- wiring ------------------------------------------------------------------------

    async def attach(self, nc: NATS) -> None:
        """Start using ``nc`` (connected) and listen for acknowledgements."""
        self._nc = nc
        self._inbox = nc.new_inbox()
        await nc.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        self._connected.set()
        self._wake.set()

    async def on_disconnected(self) -> None:
        """NATS broke: stop sending, forget nats-py's unsent bytes, re-send later."""
        self._connected.clear()
        if self._nc is not None:
            discard_unsent(self._nc)
        self._resend_all = True

    async def on_reconnected(self) -> None:
        """NATS is back: re-send what is unacknowledged, then go on with the buffer."""
        self._resend_all = True
        self._connected.set()
        self._wake.set()

    # -- the producer's side -------------------------------------------------------------

    def publish_nowait(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        *,
        topic: str | None = None,
        seq: int | None = None,
        record: bool = False,
    ) -> None:
        """Queue one message (``headers`` must hold its ``Nats-Msg-Id``); never waits. A full
        buffer drops its oldest message first (see the module docstring)."""
        if len(self._buffer) >= self._settings.max_buffer:
            self._drop_oldest()
        self._buffer.append(_Outgoing(subject, payload, headers, topic, seq, record))
        self._idle.clear()
        self._wake.set()

    def _drop_oldest(self) -> None:
        old = self._buffer.popleft()
        self._dropped += 1
        if old.record:
            self._records_dropped += 1
        self._count_drop(old)
        now = time.monotonic()
        if now - self._last_warning >= _WARN_INTERVAL:
            self._last_warning = now
            logger.warning(
                "publisher: buffer full (%d messages, NATS %s): dropped %d so far over %d "
                "topics; each is reported on the bus as PublishDropped once NATS is back",
                self._settings.max_buffer,
                "connected" if self._connected.is_set() else "unreachable",
                self._dropped,
                len(self._drops),
            )

    def _count_drop(self, item: _Outgoing) -> None:
        """Remember ``item`` for its topic's ``PublishDropped`` notice."""
        if item.topic is None or item.record:
            return
        notice = self._drops.setdefault(item.topic, DropNotice())
        notice.count += 1
        if item.seq is not None:
            notice.first_seq = item.seq if notice.first_seq is None else notice.first_seq
            notice.last_seq = item.seq

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def statistics(self) -> PublisherStatistics:
        """A frozen snapshot of the counters."""
        return PublisherStatistics(
            published=self._published,
            duplicates=self._duplicates,
            resent=self._resent,
            dropped=self._dropped,
            records_dropped=self._records_dropped,
            rejected=self._rejected,
            buffered=len(self._buffer),
            in_flight=len(self._in_flight),
            connected=self._connected.is_set(),
        )

    async def flush(self, *, deadline: float) -> bool:
        """Wait until everything queued so far is acknowledged (True), or ``deadline``
        seconds (False)."""
        try:
            async with asyncio.timeout(deadline):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    # -- the sending task ----------------------------------------------------------------

    async def run(self) -> None:
        """Send until cancelled (the caller owns the task)."""
        if self._nc is None:
            raise RuntimeError("attach() a NATS connection before run()")
        nc = self._nc
        timeout = self._settings.ack_timeout
        while True:
            raise_if_cancelled()
            await self._connected.wait()
            if self._resend_all:
                self._resend_all = False
                await self._resend(nc)
                continue
            if self._retry_at is not None:
                # A server error: hold everything newer back until the re-send, in order.
                wait = self._retry_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    self._resend_all = True
                continue
            self._queue_drop_notices()
            sent = 0
            while (
                self._buffer
                and len(self._in_flight) < self._settings.max_in_flight
                and self._connected.is_set()
                and not self._resend_all
                and self._retry_at is None
            ):
                item = self._buffer.popleft()
                if not await self._send(nc, item):
                    self._buffer.appendleft(item)
                    break
                sent += 1
                if sent % 256 == 0:
                    await asyncio.sleep(0)  # let acknowledgements in
            if not self._buffer and not self._in_flight and not self._drops:
                self._idle.set()
            oldest = next(iter(self._in_flight.values()), None)
            now = time.monotonic()
            if oldest is not None and now - oldest.sent_at >= timeout:
                logger.info(
                    "publisher: %d messages unacknowledged for %.1f s; sending them again",
                    len(self._in_flight),
                    now - oldest.sent_at,
                )
                self._resend_all = True
                continue
            self._wake.clear()
            if self._retry_at is not None:
                continue  # a server error came meanwhile (its wake-up is cleared above)
            if self._buffer and len(self._in_flight) < self._settings.max_in_flight:
                continue  # more to send at once
            wait = timeout if oldest is None else max(0.0, oldest.sent_at + timeout - now)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _queue_drop_notices(self) -> None:
        """Put one ``PublishDropped`` per topic ahead of the buffer (the dropped messages
        were older than everything buffered)."""
        if not self._drops:
            return
        drops, self._drops = self._drops, {}
        for topic, notice in reversed(list(drops.items())):
            subject, payload, headers = self._drop_notice(topic, notice)
            self._buffer.appendleft(_Outgoing(subject, payload, headers, topic, None, True))
        logger.warning(
            "publisher: reporting %d dropped messages of %d topics on the bus",
            sum(n.count for n in drops.values()),
            len(drops),
        )

    async def _send(self, nc: NATS, item: _Outgoing) -> bool:
        token = next(self._tokens)
        item.sent_at = time.monotonic()
        if not self._connected.is_set():
            return False
        try:
            await nc.publish(item.subject, item.payload, f"{self._inbox}.{token}", item.headers)
        except Exception as exc:  # the connection broke under us: wait for the next one
            logger.debug("publisher: send failed (%r); waiting for NATS", exc)
            return False
        if item.sends:
            self._resent += 1
        item.sends += 1
        self._in_flight[token] = item
        return True

    async def _resend(self, nc: NATS) -> None:
        """Everything unacknowledged goes again, in its order, before anything newer."""
        self._retry_at = None
        if not self._in_flight:
            return
        items = list(self._in_flight.values())
        self._in_flight.clear()
        self._buffer.extendleft(reversed(items))
        logger.info("publisher: re-sending %d unacknowledged messages", len(items))

    async def _on_ack(self, msg: Msg) -> None:
        try:
            token = int(msg.subject.rsplit(".", 1)[1])
        except ValueError:
            return
        item = self._in_flight.get(token)
        if item is None:
            return  # acknowledged already (an answer to an earlier send)
        headers = msg.headers or {}
        try:
            ack = (
                _Ack(error={"code": 503, "description": "no responders"})
                if headers.get("Status") == _NO_RESPONDERS
                else _decode_ack(msg.data)
            )
        except (msgspec.DecodeError, msgspec.ValidationError):
            ack = _Ack(error={"description": f"not an acknowledgement: {msg.data[:100]!r}"})
        if ack.error is not None and int(ack.error.get("code") or 0) >= 500:
            # No stream, or JetStream (re)starting: it keeps its place among the
            # unacknowledged, and they all go again a little later, in order (run()).
            if self._retry_at is None:
                self._retry_at = time.monotonic() + _RETRY_DELAY
            self._wake.set()
            return
        del self._in_flight[token]
        if ack.error is not None:
            self._rejected += 1
            self._count_drop(item)  # reported on the bus like a message dropped here
            logger.warning(
                "publisher: JetStream refused a message on %s: %s",
                item.subject,
                ack.error.get("description", ack.error),
            )
        elif ack.duplicate:
            self._duplicates += 1
        else:
            self._published += 1
        self._wake.set()
