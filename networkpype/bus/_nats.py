"""The NATS client as the bus uses it: connecting (with a deadline and a clear error),
the market-data stream, and the one reach into nats-py's internals.

Every connection reconnects by itself for ever (``max_reconnect_attempts=-1``); the bus's
own code decides what to do meanwhile (a collector buffers, a consumer waits).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from networkpype.protocol.errors import BusUnavailableError, ConfigurationError
from networkpype.protocol.redaction import redact_url

__all__ = [
    "DEFAULT_NATS_URL",
    "DEFAULT_STREAM",
    "StreamSettings",
    "connect",
    "discard_unsent",
    "ensure_stream",
    "raise_if_cancelled",
]

logger = logging.getLogger(__name__)

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "NP_MD"
_RECONNECT_WAIT = 0.25  # seconds between two reconnection attempts to one server
_CONNECT_TIMEOUT = 2.0  # seconds one attempt may take


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The JetStream stream that holds the bus's messages (created if missing; an existing
    one is used as it is). ``max_age`` (s) and ``max_bytes`` bound what it keeps (the oldest
    go first: a consumer further behind meets a ``SequenceGap``); ``duplicate_window`` (s)
    is how long a message id is remembered for de-duplication; ``file_storage`` keeps it
    across server restarts; ``replicas``: copies of the stream, and of the collectors' lease
    bucket, on as many servers of a NATS cluster (3 in a 3-node cluster; 1 on one server)."""

    name: str = DEFAULT_STREAM
    prefix: str = "md"
    max_age: float = 3600.0
    max_bytes: int = 1 << 30
    duplicate_window: float = 120.0
    file_storage: bool = True
    replicas: int = 1


def _servers(urls: str | Sequence[str]) -> list[str]:
    servers = [urls] if isinstance(urls, str) else list(urls)
    if not servers:
        raise ConfigurationError("give at least one NATS server URL")
    for url in servers:
        if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ConfigurationError(
                f"{redact_url(url)!r} is not a NATS URL: use nats://host:port"
            )
    return servers


async def connect(
    urls: str | Sequence[str],
    *,
    name: str,
    deadline: float = 30.0,
    on_disconnected: Callable[[], Awaitable[None]] | None = None,
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
) -> NATS:
    """A NATS connection that reconnects by itself for ever. The first connection is
    retried until ``deadline`` seconds have passed; then ``BusUnavailableError``.
    ``ConfigurationError`` for a URL that is not a NATS URL."""
    servers = _servers(urls)
    shown = ", ".join(redact_url(u) for u in servers)
    give_up_at = time.monotonic() + deadline
    attempt = 0

    async def error_cb(exc: Exception) -> None:
        logger.debug("%s: NATS connection error: %r", name, exc)

    async def disconnected_cb() -> None:
        logger.info("%s: NATS disconnected (%s); reconnecting", name, shown)
        if on_disconnected is not None:
            await on_disconnected()

    async def reconnected_cb() -> None:
        logger.info("%s: NATS reconnected (%s)", name, shown)
        if on_reconnected is not None:
            await on_reconnected()

    while True:
        attempt += 1
        try:
            async with asyncio.timeout(max(0.1, give_up_at - time.monotonic())):
                nc = await nats.connect(
                    servers,
                    name=name,
                    allow_reconnect=True,
                    # One round over the servers here (the deadline is ours to keep); once
                    # connected, reconnect for ever.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=_RECONNECT_WAIT,
                    connect_timeout=_CONNECT_TIMEOUT,
                    error_cb=error_cb,
                    disconnected_cb=disconnected_cb,
                    reconnected_cb=reconnected_cb,
                )
            nc.options["max_reconnect_attempts"] = -1
            return nc
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            left = give_up_at - time.monotonic()
            if left <= 0:
                raise BusUnavailableError(
                    f"NATS unreachable at {shown} after {attempt} attempts in {deadline:g} s: "
                    f"{exc!r}"
                ) from exc
            if attempt == 1:
                logger.warning("%s: NATS unreachable at %s (%r); retrying", name, shown, exc)
            await asyncio.sleep(min(_RECONNECT_WAIT * attempt, 2.0, left))


async def ensure_stream(js: JetStreamContext, settings: StreamSettings) -> None:
    """Create the bus's stream unless it exists (an existing one is left as it is)."""
    try:
        await js.stream_info(settings.name)
        return
    except NotFoundError:
        pass
    config = js_api.StreamConfig(
        name=settings.name,
        subjects=[f"{settings.prefix}.>"],
        retention=js_api.RetentionPolicy.LIMITS,
        discard=js_api.DiscardPolicy.OLD,
        max_age=settings.max_age,
        max_bytes=settings.max_bytes,
        duplicate_window=settings.duplicate_window,
        storage=js_api.StorageType.FILE if settings.file_storage else js_api.StorageType.MEMORY,
        num_replicas=settings.replicas,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:
        # Created by another process meanwhile (same name): fine if it now exists.
        await js.stream_info(settings.name)
    logger.info("created stream %s on %s.>", settings.name, settings.prefix)


def discard_unsent(nc: NATS) -> int:
    """Forget what nats-py buffered for the broken socket and would send first on the next
    connection; returns the bytes discarded.

    The publisher re-sends everything unacknowledged, in order, once reconnected; had nats-py
    flushed its own leftovers first, a later message could land in the stream before an
    earlier one that was lost in the broken socket. Call it only on a connection that
    carries nothing but publishes (the publisher's own). This is the only use of nats-py's
    private attributes (``_pending``, ``_pending_data_size``; nats-py 2.x).
    """
    size = int(getattr(nc, "_pending_data_size", 0))
    if hasattr(nc, "_pending"):
        nc._pending = []
        nc._pending_data_size = 0
    return size


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` in a task that was cancelled while nats-py swallowed it.

    nats-py 2.x catches ``CancelledError`` in places (its flush after a publish), so a
    ``cancel()`` landing there is lost and the task would go on; every loop of the bus that
    awaits nats-py calls this once per turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
