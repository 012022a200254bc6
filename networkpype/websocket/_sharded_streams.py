"""Transforms of a sharded manager's streams: duplicate removal around rotations, event
filtering, and draining a queue of decoded responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

import msgspec

from networkpype.actors.delivery import DeliveryQueue, QueueClosed
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.response import WebSocketResponse

__all__ = ["dedup_rotations", "drain", "only_messages"]


async def only_messages(source: AsyncIterator[Any], events: bool) -> AsyncIterator[Any]:
    """``source`` with its lifecycle events, or without them."""
    async for item in source:
        if events or isinstance(item, WebSocketResponse):
            yield item


async def dedup_rotations(
    source: AsyncIterator[Any], key: Callable[[Any], Hashable] | None
) -> AsyncIterator[Any]:
    """Between ``RotationStarted`` and ``RotationFinished`` two connections deliver the
    same topics: with a ``key``, a message whose key was seen in the overlap is dropped (and
    counted in ``RotationFinished.duplicates_removed``)."""
    overlaps, seen, removed = 0, set[Hashable](), 0
    async for item in source:
        if isinstance(item, WebSocketResponse):
            if overlaps and key is not None:
                k = key(item.data)
                if k in seen:
                    removed += 1
                    continue
                seen.add(k)
        elif isinstance(item, RotationStarted):
            overlaps += 1
        elif isinstance(item, RotationFinished):
            overlaps -= 1
            item = msgspec.structs.replace(item, duplicates_removed=removed)
            if not overlaps:
                seen.clear()
                removed = 0
        yield item


async def drain(
    queue: DeliveryQueue[Any], processors: list[WebSocketPostProcessor], events: bool
) -> AsyncIterator[Any]:
    """The items of a queue of decoded responses and events, post-processed, until closed."""
    while True:
        try:
            try:
                batch = queue.get_batch_nowait()
            except asyncio.QueueEmpty:
                batch = await queue.get_batch()
        except QueueClosed:
            return
        for item in batch:
            if isinstance(item, WebSocketResponse):
                for processor in processors:
                    item = await processor.post_process(item)
                yield item
            elif events:
                yield item
