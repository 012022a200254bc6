"""One JetStream pull consumer of the bus and its acknowledgements, for
:class:`~networkpype.bus.consumer.BusConsumer`.

It pulls with requests of its own on an inbox of its own (nats-py's ``fetch`` makes a task
per message): one request of ``batch`` messages at a time, the next one sent as soon as the
last is answered, so up to two batches wait while the application works. Acknowledgements
are AckAll: acknowledging a message acknowledges every one before it.

After the NATS connection broke and came back (:meth:`PullReader.reconnected`), messages
the server delivered into the broken socket never arrived, yet count as delivered: the next
pull would bring newer ones, whose acknowledgement (AckAll) would cover the lost ones
unseen. So the reader starts again right after the last message it handed out (the
consumer made again at that stream sequence, as :meth:`PullReader.open` does after a crash),
and what it had received but not handed out comes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from networkpype.bus._nats import raise_if_cancelled

__all__ = ["PullReader", "PullSettings", "delivery"]

logger = logging.getLogger("networkpype.bus.consumer")

_TRANSIENT = (OSError, TimeoutError, nats.errors.Error)
_RETRY = 0.25  # seconds between two pull requests while NATS is unreachable
_PULL_EXPIRES = 1.0  # seconds a pull request waits at the server for messages


@dataclass(frozen=True, slots=True)
class PullSettings:
    """``stream``: the stream's name; ``batch``: messages per pull request; ``ack_wait``:
    seconds before JetStream delivers an unacknowledged message again; ``deliver``: ``"all"``
    or ``"new"`` for a consumer made now."""

    stream: str
    batch: int
    ack_wait: float
    deliver: str


def delivery(reply: str) -> tuple[int, int]:
    """(times delivered, stream sequence) from a JetStream message's reply subject:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`` (with a domain and an
    account hash after ``$JS.ACK`` in the newer form)."""
    parts = reply.split(".")
    if len(parts) == 9:
        return int(parts[4]), int(parts[5])
    return int(parts[6]), int(parts[7])


class PullReader:
    """See the module docstring: :meth:`open`, then :meth:`next_batch` (after calling
    :meth:`handed` for each message handed out), :meth:`close` last."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        settings: PullSettings,
        subject: str,
        name: str | None,
    ) -> None:
        self._nc = nc
        self._settings = settings
        self._js = js
        self._subject = subject
        self._name = name
        self._consumer = ""
        self._handed: Msg | None = None  # the last message handed out, not yet acknowledged
        self._closed = False
        self.redelivered_up_to = 0
        """Stream sequence up to which messages were delivered to an earlier reader."""
        self._queue: list[Msg] = []
        self._arrived = asyncio.Event()
        self._inbox = ""
        self._sub: Any = None
        self._owed = 0  # messages the request in flight may still bring
        self._asked_at = 0.0
        self._last: Msg | None = None  # the last message handed out, acknowledged or not
        self._resync = False  # the connection came back: start again after _last

    def _config(self) -> js_api.ConsumerConfig:
        settings = self._settings
        return js_api.ConsumerConfig(
            durable_name=self._name,
            name=self._name,
            filter_subject=self._subject,
            ack_policy=js_api.AckPolicy.ALL,
            ack_wait=settings.ack_wait,
            max_ack_pending=max(1000, settings.batch * 4),
            deliver_policy=(
                js_api.DeliverPolicy.ALL if settings.deliver == "all" else js_api.DeliverPolicy.NEW
            ),
            inactive_threshold=None if self._name else 60.0,
        )

    async def open(self) -> None:
        """Create the consumer, or resume a durable one from its acknowledgement floor."""
        config = self._config()
        if self._name is not None:
            await self._resume_from_floor(config)
        await self._subscribe(config)

    async def _subscribe(self, config: js_api.ConsumerConfig) -> None:
        """Add the consumer as ``config`` says and read it on a new inbox."""
        stream = self._settings.stream
        info = await self._js.add_consumer(stream, config=config)
        self._consumer = info.name
        old, self._sub = self._sub, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()
        self._queue.clear()
        self._owed = 0
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message)
        self._next = f"{js_api.DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{self._consumer}"

    async def _resume_from_floor(self, config: js_api.ConsumerConfig) -> None:
        """A durable consumer whose last reader stopped (or crashed) with messages delivered
        but not acknowledged starts again right after its last acknowledgement.

        Left as it is, JetStream would deliver newer messages first and those only after
        ``ack_wait``, out of order, and an acknowledgement of a newer message (AckAll) would
        cover them unseen. So the consumer is made again, same name, starting at the floor;
        what it had delivered past the floor comes again marked ``redelivered``. (A durable
        name is for one reading process at a time.)"""
        stream = self._settings.stream
        assert self._name is not None
        try:
            info = await self._js.consumer_info(stream, self._name)
        except nats.js.errors.NotFoundError:
            return
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        delivered = info.delivered.stream_seq if info.delivered else 0
        if delivered <= floor:
            # Kept as it is: JetStream refuses to change an existing consumer's deliver
            # policy (10012), which an earlier resume set to BY_START_SEQUENCE.
            existing = info.config
            config.deliver_policy = existing.deliver_policy
            config.opt_start_seq = existing.opt_start_seq
            config.opt_start_time = existing.opt_start_time
            return
        self.redelivered_up_to = delivered
        logger.info(
            "consumer %s: resuming at stream sequence %d (delivered up to %d, unacknowledged)",
            self._name,
            floor + 1,
            delivered,
        )
        await self._js.delete_consumer(stream, self._name)
        config.deliver_policy = js_api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = floor + 1

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._queue.append(msg)
            self._owed -= 1
        elif status == js_api.StatusCode.CONTROL_MESSAGE:
            return  # a heartbeat
        else:  # 404 no messages, 408 request expired, 409 ...: the request is over
            self._owed = 0
        self._arrived.set()

    def handed(self, msg: Msg) -> None:
        """``msg`` was handed out: the next acknowledgement covers it."""
        self._handed = self._last = msg

    def reconnected(self) -> None:
        """The NATS connection came back: see the module docstring."""
        self._resync = True
        self._arrived.set()

    async def _start_again(self) -> None:
        """Make the consumer again right after the last message handed out, on a new inbox
        (what the old one still brings is not read)."""
        handed = delivery(self._last.reply)[1] if self._last is not None else 0
        try:
            info = await self._js.consumer_info(self._settings.stream, self._consumer)
        except nats.js.errors.NotFoundError:  # an ephemeral one the restarted server forgot
            if not handed:
                await self._subscribe(self._config())
                return
            floor, delivered = handed, handed + 1  # make it again
        else:
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            delivered = info.delivered.stream_seq if info.delivered else 0
        start = max(floor, handed)
        if delivered <= start:
            return  # nothing delivered past what was handed out: nothing was lost
        logger.info(
            "consumer %s: NATS came back; starting again at stream sequence %d (delivered up "
            "to %d)",
            self._consumer,
            start + 1,
            delivered,
        )
        self.redelivered_up_to = max(self.redelivered_up_to, delivered)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(self._settings.stream, self._consumer)
        config = self._config()
        config.deliver_policy = js_api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = start + 1
        await self._subscribe(config)

    async def _ack(self, *, sync: bool) -> None:
        msg, self._handed = self._handed, None
        if msg is None:
            return
        try:
            if sync:
                await msg.ack_sync(timeout=2.0)
            else:
                await msg.ack()
        except _TRANSIENT as exc:
            # Unacknowledged: JetStream delivers it (and what follows) again, marked.
            logger.info("consumer: acknowledgement failed (%r); redelivery will follow", exc)

    async def _ask(self) -> None:
        nc = self._nc
        if not nc.is_connected:
            return
        batch = self._settings.batch
        request = {"batch": batch, "expires": int(_PULL_EXPIRES * 1e9)}
        try:
            await nc.publish(self._next, msgspec.json.encode(request), reply=self._inbox)
        except _TRANSIENT as exc:
            logger.debug("consumer: pull request failed (%r); retrying", exc)
            return
        self._owed = batch
        self._asked_at = time.monotonic()

    async def next_batch(self) -> list[Msg]:
        """Acknowledge what was handed out, then the next messages (waiting as long as it
        takes; while NATS is unreachable, asking again)."""
        await self._ack(sync=False)
        while True:
            raise_if_cancelled()
            if self._resync and self._nc.is_connected:
                self._resync = False
                try:
                    await self._start_again()
                except _TRANSIENT as exc:  # JetStream still starting: try again shortly
                    logger.info("consumer: starting again failed (%r); retrying", exc)
                    self._resync = True
                    await asyncio.sleep(_RETRY)
                    continue
            if self._owed > 0 and time.monotonic() - self._asked_at > _PULL_EXPIRES + 1.0:
                self._owed = 0  # the request was lost (a reconnection): ask again
            if self._owed <= 0:
                await self._ask()
            if self._queue:
                batch, self._queue = self._queue, []
                return batch
            self._arrived.clear()
            try:
                async with asyncio.timeout(_RETRY if self._owed <= 0 else _PULL_EXPIRES + 1.0):
                    await self._arrived.wait()
            except TimeoutError:
                pass

    async def close(self) -> None:
        """Acknowledge what was handed out (and wait for the server's answer); stop."""
        if self._closed:
            return
        self._closed = True
        await self._ack(sync=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
