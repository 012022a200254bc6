"""A sharded manager's streams: the per-topic router, duplicate removal around rotations,
event filtering, and draining a queue of decoded responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import msgspec

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.events import (
    GaveUp,
    MessagesDropped,
    RotationFinished,
    RotationStarted,
    TopicsLost,
)
from networkpype.protocol.options import Overflow
from networkpype.runtime import cancel_and_wait
from networkpype.websocket._sharded_state import Stream
from networkpype.websocket.manager import consume
from networkpype.wire.decoding import MessageDecoder, make_decoder
from networkpype.wire.processor import WebSocketPostProcessor
from networkpype.wire.response import WebSocketResponse

__all__ = ["TopicRouter", "dedup_rotations", "drain", "only_messages"]


async def only_messages(source: AsyncIterator[Any], events: bool) -> AsyncIterator[Any]:
    """``source`` with its lifecycle events, or without them."""
    async for item in source:
        if events or isinstance(item, WebSocketResponse):
            yield item


async def dedup_rotations(
    source: AsyncIterator[Any],
    key: Callable[[Any], Hashable] | None,
    topic_of: Callable[[Any], Hashable],
) -> AsyncIterator[Any]:
    """Remove the messages two connections both deliver around a rotation.

    From ``RotationStarted`` on, the old connection and its replacement both deliver the
    rotation's ``topics``: with a ``key``, the key of each message of those topics is kept,
    and a message whose key was kept already is dropped (counted in the next
    ``RotationFinished.duplicates_removed``). The check of a topic outlasts the rotation: a
    replacement that lags behind still delivers, after ``RotationFinished``, events the old
    connection delivered; it ends at the topic's first message with a key not seen before
    (the replacement has caught up), and its keys are forgotten then. ``topic_of(data)``
    names a message's topic (the codec's). Only rotating topics' keys are kept: the memory
    is bounded by the messages of one overlap.
    """
    rotating: dict[str, tuple[str, ...]] = {}  # old connection -> its topics, while rotating
    active: dict[Hashable, int] = {}  # topic -> rotations under way that carry it
    seen: dict[Hashable, set[Hashable]] = {}  # topic -> keys delivered since its rotation began
    removed = 0
    async for item in source:
        if isinstance(item, WebSocketResponse):
            if key is not None and (seen or active):
                data = item.data
                topic = topic_of(data)
                keys = seen.get(topic)
                if keys is not None:
                    k = key(data)
                    if k in keys:
                        removed += 1
                        continue
                    if active.get(topic):
                        keys.add(k)
                    else:
                        del seen[topic]  # caught up: nothing the old one sent is still to come
        elif isinstance(item, RotationStarted):
            rotating[item.connection_id] = item.topics
            for topic in item.topics:
                active[topic] = active.get(topic, 0) + 1
                seen.setdefault(topic, set())
        elif isinstance(item, RotationFinished):
            for topic in rotating.pop(item.connection_id, ()):
                count = active.pop(topic, 0) - 1
                if count > 0:
                    active[topic] = count
            item = msgspec.structs.replace(item, duplicates_removed=removed)
            removed = 0
        yield item


def drain(
    queue: DeliveryQueue[Any], processors: list[WebSocketPostProcessor], events: bool
) -> AsyncIterator[Any]:
    """The items of a queue of decoded responses and events, post-processed, until closed
    (the one consumer loop, ``consume``: nothing leaves the queue that is not handed on)."""
    return consume(lambda: queue, _NO_DECODER, processors, events)


class TopicRouter:
    """Per-topic streams of a sharded manager: once the first ``open()``, a task owned by the
    router takes the merged queue, decodes it and hands each message to its topic's stream,
    what no stream claims to ``rest`` (``iter_messages()`` reads that from then on), and each
    shard's gap events to every stream of that shard (rotation events, and the
    ``MessagesDropped`` of the merged queue, whose frames could be any topic's, to all).

    ``topic_of(data)`` names a message's topic (the codec's); ``shard_of(topic)`` its shard.
    A ``GaveUp`` event goes to the streams of the topics it names too; when ``gave_up(shard)``
    gives the error of a shard the manager goes on without, those streams then end with it.
    A ``TopicsLost`` event goes to the streams of its topics, which then end.
    A failure of the merged queue (the stream stopped) ends every stream with that error.
    """

    def __init__(
        self,
        source: DeliveryQueue[Any],
        decoder: MessageDecoder,
        topic_of: Callable[[Any], str | None],
        shard_of: Callable[[str], str | None],
        gave_up: Callable[[str], BaseException | None],
    ) -> None:
        self._source = source
        self._decoder = decoder
        self._topic_of = topic_of
        self._shard_of = shard_of
        self._gave_up = gave_up
        self.streams: dict[str, Stream] = {}
        self.rest: DeliveryQueue[Any] | None = None  # what no stream claims, once routing
        self._task: asyncio.Task[None] | None = None

    def consumer_queue(self) -> DeliveryQueue[Any]:
        """Where ``iter_messages()`` reads: the merged queue, or ``rest`` once routing."""
        return self._source if self.rest is None else self.rest

    def open(self, topic: str, max_queue: int, overflow: Overflow) -> Stream:
        """The stream of ``topic`` (made, with its bounded queue, on first use)."""
        stream = self.streams.get(topic)
        if stream is None:
            queue: DeliveryQueue[Any] = DeliveryQueue(max_queue, overflow, droppable=_decoded)
            stream = self.streams[topic] = Stream(queue)
            if self._task is None:
                self.rest = DeliveryQueue(
                    self._source.maxsize, self._source.overflow, droppable=_decoded
                )
                # A consumer waiting on the merged queue moves to ``rest``: the router is
                # that queue's one consumer from now on.
                self._source.hand_over()
                self._task = asyncio.get_running_loop().create_task(
                    self._route(), name="networkpype-sharded-router"
                )
        return stream

    def end(self, topic: str) -> None:
        """The topic is gone: its stream's consumer loop ends."""
        stream = self.streams.pop(topic, None)
        if stream is not None:
            stream.queue.close()

    async def aclose(self) -> None:
        """Stop routing and end every stream and ``rest``."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for stream in self.streams.values():
            stream.queue.close()
        if self.rest is not None:
            self.rest.close()

    async def _route(self) -> None:
        assert self.rest is not None
        rest, topic_of, streams = self.rest, self._topic_of, self.streams
        try:
            async for item in consume(lambda: self._source, self._decoder, [], True):
                if isinstance(item, WebSocketResponse):
                    stream = streams.get(topic_of(item.data) or "")
                    if stream is not None:
                        stream.messages += 1
                        if not stream.queue.offer(item):
                            await stream.queue.put(item)
                        continue
                    if not rest.offer(item):
                        await rest.put(item)
                    continue
                rest.put_nowait(item)
                shard = getattr(item, "connection_id", None)
                # A drop in the merged queue is tied to no topic: any stream may have lost a
                # message to it. Rotations concern every stream too.
                everyone = isinstance(item, RotationStarted | RotationFinished | MessagesDropped)
                named = isinstance(item, GaveUp | TopicsLost)
                lost = frozenset(item.topics) if named else frozenset()
                for topic, stream in streams.items():
                    if everyone or topic in lost or self._shard_of(topic) == shard:
                        stream.queue.put_nowait(item)
                if isinstance(item, TopicsLost):
                    for topic in lost:
                        self.end(topic)
                elif lost and shard is not None:
                    self._lose(lost, shard)
        except Exception as exc:  # a gave-up shard ends every stream with its error
            for queue in [rest, *(s.queue for s in streams.values())]:
                queue.fail(exc)
                queue.close()
            return
        rest.close()
        for stream in streams.values():
            stream.queue.close()

    def _lose(self, topics: frozenset[str], shard: str) -> None:
        """The manager goes on without ``shard``: its topics' streams end with its error (the
        merged queue's own failure ends them otherwise)."""
        error = self._gave_up(shard)
        if error is None:
            return
        for topic in topics:
            stream = self.streams.pop(topic, None)
            if stream is not None:
                stream.queue.fail(error)
                stream.queue.close()


_NO_DECODER = make_decoder("raw")  # a routed queue holds decoded responses only


def _decoded(item: Any) -> bool:
    """What an overflow policy may drop from a routed queue: a message, not an event."""
    return isinstance(item, WebSocketResponse)
