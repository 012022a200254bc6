"""The venue's replies to a sharded manager's own requests, matched by request id as frames
arrive (before the delivery queue, so they are seen even while nobody reads). Part of
:mod:`networkpype.websocket.sharded`.

The ids the manager's requests carry stay known only as long as a reply may still come: a
subscribe request while it is in a replay record (each replay draws a reply), an unsubscribe
request until its reply. A bot that subscribes and unsubscribes for weeks holds no growing
set of ids.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

from networkpype.websocket.codec import Reply, TopicCodec
from networkpype.wire.request import WebSocketRequest

__all__ = ["Acks"]

logger = logging.getLogger("networkpype.websocket.sharded")

FIRST_ID = 1 << 30
"""Request ids start here: far from the small ids programs number their own requests with, so
a reply to the user's own ``send()`` reaches the user."""


class Acks:
    """Builds the manager's subscribe/unsubscribe requests with ``codec`` and takes their
    replies out of the stream (``intercept``). ``on_replay_rejected(request, reason)`` is
    called (in the reader, without waiting) when the venue rejects a recorded subscription it
    had accepted before, at a replay."""

    def __init__(
        self,
        codec: TopicCodec,
        on_replay_rejected: Callable[[WebSocketRequest, str], None] | None = None,
    ) -> None:
        self._codec = codec
        self._on_replay_rejected = on_replay_rejected
        self._ids = itertools.count(FIRST_ID)
        self._pending: dict[int, asyncio.Future[Reply]] = {}  # awaited by subscribe_topics
        self._recorded: dict[int, WebSocketRequest] = {}  # subscribe requests to replay
        self._rids: dict[int, int] = {}  # id(recorded request) -> its request id
        self._last: dict[int, tuple[float, Reply]] = {}  # request id -> its last reply, when
        self._once: set[int] = set()  # unsubscribe requests: one reply each

    def __len__(self) -> int:
        """Request ids whose replies are still expected (for tests and statistics)."""
        return len(self._pending) + len(self._recorded) + len(self._once)

    def intercept(self, frame: bytes) -> bool:
        """True when ``frame`` is a reply to one of our requests (taken out of the stream)."""
        reply = self._codec.parse_reply(frame)
        if reply is None:
            return False
        rid = reply.request_id
        if rid in self._recorded:
            self._last[rid] = (time.monotonic(), reply)
        future = self._pending.pop(rid, None)
        if future is not None:
            if not future.done():
                future.set_result(reply)
            return True
        recorded = self._recorded.get(rid)
        if recorded is not None:
            if reply.error is not None:
                logger.warning("venue rejected request %d on replay: %s", rid, reply.error)
                if self._on_replay_rejected is not None:
                    self._on_replay_rejected(recorded, reply.error)
            return True
        if rid in self._once:
            self._once.discard(rid)
            if reply.error is not None:
                logger.warning("venue rejected unsubscribe %d: %s", rid, reply.error)
            return True
        return False  # data, or the answer to the user's own send(): theirs to read

    def subscribe(self, topics: list[str]) -> tuple[WebSocketRequest, asyncio.Future[Reply]]:
        """A subscribe request for ``topics``, recorded, and the future of its reply."""
        rid = next(self._ids)
        request = self._recorded[rid] = self._codec.subscribe(topics, rid)
        self._rids[id(request)] = rid
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        return request, future

    def expect(self, request: WebSocketRequest, since: float) -> asyncio.Future[Reply]:
        """The future of a reply to the recorded ``request`` (sent again by a replay, say)
        that came at or after ``since`` (monotonic seconds): done at once when one did;
        cancelled if the request is forgotten; the same future when one is awaited already."""
        rid = self._rids.get(id(request))
        waiting = self._pending.get(rid) if rid is not None else None
        if waiting is not None:
            return waiting  # awaited already (its first send, say): one reply answers both
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        last = self._last.get(rid) if rid is not None else None
        if rid is None:
            future.cancel()
        elif last is not None and last[0] >= since:
            future.set_result(last[1])
        else:
            self._pending[rid] = future
        return future

    def awaited(self, request: WebSocketRequest) -> bool:
        """True while a reply to the recorded ``request`` is awaited (``subscribe``,
        ``expect``)."""
        rid = self._rids.get(id(request))
        return rid is not None and rid in self._pending

    def record(self, topics: list[str]) -> WebSocketRequest:
        """A subscribe request for ``topics`` that will be replayed (not sent now)."""
        rid = next(self._ids)
        request = self._recorded[rid] = self._codec.subscribe(topics, rid)
        self._rids[id(request)] = rid
        return request

    def unsubscribe(self, topics: list[str]) -> tuple[WebSocketRequest, int]:
        """An unsubscribe request for ``topics`` and its id; its one reply is ours."""
        rid = next(self._ids)
        self._once.add(rid)
        return self._codec.unsubscribe(topics, rid), rid

    def unsent(self, request_id: int) -> None:
        """The unsubscribe ``request_id`` did not go out: no reply will come."""
        self._once.discard(request_id)

    def forget(self, request: WebSocketRequest) -> None:
        """``request`` left every replay record: its later replies are not expected."""
        rid = self._rids.pop(id(request), None)
        if rid is not None:
            self._recorded.pop(rid, None)
            self._last.pop(rid, None)
            future = self._pending.pop(rid, None)
            if future is not None and not future.done():
                future.cancel()

    def close(self) -> None:
        """Cancel every wait (the manager disconnects)."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._recorded.clear()
        self._rids.clear()
        self._last.clear()
        self._once.clear()
