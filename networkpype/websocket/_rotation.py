"""Connection attempts and rotation of a sharded manager: the gate every attempt passes,
the rotation arithmetic and warnings, and the make-before-break rotations themselves. Part of
:mod:`networkpype.websocket.sharded` (a base class of ``ShardedWebSocketManager``, holding
what only rotation needs).

Every attempt passes ``_attempt_gate``: a first open or a redial at ``REDIAL`` priority, a
rotation's replacement at ``ROTATION`` priority with the redial reserve, cancelled when its
reason is gone. A connection whose replacement is open and subscribing does not redial on
its own if it drops (the venue's age limit cuts it, say): it waits for the rotation, and is
redialled only if the rotation failed; rotated out, it is closed, never redialled. A
replacement that fails before taking over is not redialled either (the rotation ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from networkpype.actors.delivery import DeliveryQueue
from networkpype.protocol.errors import GaveUpError
from networkpype.protocol.events import RotationFinished, RotationStarted
from networkpype.protocol.messages import Subscribe
from networkpype.websocket._acks import Acks
from networkpype.websocket._attempts import REDIAL, ROTATION, AttemptGate
from networkpype.websocket._budget import (
    AttemptBudget,
    redial_reserve,
    rotation_lead,
    rotation_load,
)
from networkpype.websocket._sharded_state import Shard, Wait
from networkpype.websocket.codec import TopicCodec
from networkpype.wire.pacing import WIRE_MARGIN

__all__ = ["Rotation", "Rotations"]

logger = logging.getLogger("networkpype.websocket.sharded")

_REPLAN = 1.0  # seconds: the rotator looks at the shards again at least this often


class Rotations:
    """The attempt gate and the rotations of a ``ShardedWebSocketManager`` (its base)."""

    # Set by ShardedWebSocketManager.__init__.
    _budget: AttemptBudget | None
    _gate: AttemptGate
    _rotations: dict[str, Rotation]  # replacement id -> its rotation
    _replacing: dict[str, Rotation]  # old id -> its rotation, once the replacement is open
    _fit_warned: bool
    _max_age: float | None
    _gap: float | None
    _overlap: float
    _stagger: float
    _codec: TopicCodec
    _cap: int
    _shards: list[Shard]
    _lock: asyncio.Lock
    _queue: DeliveryQueue[Any]
    _acks: Acks

    if TYPE_CHECKING:  # the manager's own

        async def _open_shard(
            self, *, append: bool = True, rotation: Rotation | None = None
        ) -> Shard: ...
        async def _close_shard(self, shard: Shard) -> None: ...
        async def _ask(self, message: Any) -> None: ...
        def _shard(self, shard_id: str) -> Shard | None: ...
        async def _send_subscribes(self, shard: Shard, topics: list[str]) -> list[Wait]: ...
        async def _confirm_all(
            self, shard: Shard, waits: list[Wait], rotation: Rotation | None = None
        ) -> dict[str, str]: ...
        async def _unsubscribe_on(self, shard: Shard, gone: list[str]) -> None: ...
        def _report_lost(self, shard_id: str, lost: dict[str, str]) -> None: ...
        async def _confirm_replay(self, shard: Shard, since: float) -> None: ...

    # -- connection attempts ---------------------------------------------------------------

    def _attempt_gate(self, shard_id: str) -> AbstractAsyncContextManager[Any]:
        """Around every connection attempt of shard ``shard_id`` (``connect_gate``)."""
        replacing = self._replacing.get(shard_id)
        if replacing is not None:
            # Its replacement is open and subscribing: no attempt of its own unless the
            # rotation fails (rotated out, it is closed in a moment and never redialled).
            return self._redial_after(replacing)
        rotation = self._rotations.get(shard_id)
        if rotation is None:
            return self._gate.attempt(REDIAL)  # a first open or a redial: topics are dark
        if rotation.dialled:
            return _never()  # the replacement failed before taking over: the rotation ends
        rotation.dialled = True
        return self._gate.attempt(ROTATION, self._reserve(), cancelled=rotation.stale)

    @contextlib.asynccontextmanager
    async def _redial_after(self, rotation: Rotation) -> AsyncIterator[None]:
        await rotation.ended.wait()
        if rotation.swapped:
            await asyncio.Event().wait()  # closed for good in a moment: that ends the wait
        async with self._gate.attempt(REDIAL):
            yield

    def _reserve(self) -> int:
        """Attempts a rotation leaves free for redials."""
        budget = self._budget
        if budget is None:
            return 0
        return redial_reserve(len(self._shards), budget.limit, self._gate.recent_redials())

    def _lead(self, topics: int) -> float:
        """Seconds before ``max_age`` a rotation of a shard with ``topics`` starts."""
        assert self._max_age is not None
        size = self._codec.max_topics_per_message
        frames = -(-topics // size)
        gap = self._gap * (1 + WIRE_MARGIN) if self._gap is not None else 0.0
        return rotation_lead(self._max_age, frames, gap, self._overlap)

    def _check_rotation_fit(self, connections: int, *, at_configuration: bool = False) -> None:
        """WARNING when rotating ``connections`` full shards needs more attempts than the
        budget leaves rotations (``_budget.rotation_load``); once per manager."""
        budget, max_age = self._budget, self._max_age
        if budget is None or max_age is None or self._fit_warned:
            return
        load = rotation_load(
            connections, max_age, self._lead(self._cap), budget.limit, budget.window
        )
        if load.fits:
            return
        self._fit_warned = True
        if load.every <= 0:
            logger.warning(
                "sharded manager: max_age=%g s is too short to rotate a connection of %d topics "
                "(a rotation takes about %.1f s): connections will be cut by the venue and "
                "redialled, with a gap",
                max_age,
                self._cap,
                self._lead(self._cap),
            )
            return
        fit = max(0, int(load.available * load.every // budget.window))
        logger.warning(
            "sharded manager: %d connections rotated every %.1f s (max_age=%g s) need %.1f "
            "attempts per %g s; max_connection_attempts=(%d, %g) leaves rotations %d (the rest "
            "is kept for redials): rotations fit %d connections (%d topics)%s. The others will "
            "be cut by the venue at max_age and redialled, with a gap (reported)",
            connections,
            load.every,
            max_age,
            load.needed,
            budget.window,
            budget.limit,
            budget.window,
            load.available,
            fit,
            fit * self._cap,
            " at most" if at_configuration else "",
        )

    # -- rotation --------------------------------------------------------------------------

    def _rotation_due(self, shard: Shard) -> float:
        """When ``shard``'s rotation starts (monotonic): early enough to end before
        ``max_age``."""
        assert self._max_age is not None
        return shard.connection.opened_at + self._max_age - self._lead(shard.load)

    def _rotation_starts(self) -> list[tuple[float, Shard]]:
        """The shards to rotate, earliest start first: each at its ``_rotation_due``, or
        earlier when the starts after it, ``rotation_stagger`` apart, would not be in time
        (connections that opened together, after a mass reset, come due together)."""
        due = sorted(
            (
                (self._rotation_due(s), s)
                for s in self._shards
                if s.connection.connected and not s.rotating
            ),
            key=lambda pair: pair[0],
        )
        starts: list[tuple[float, Shard]] = []
        latest = float("inf")
        for when, shard in reversed(due):
            latest = min(when, latest - self._stagger)
            starts.append((latest, shard))
        starts.reverse()
        return starts

    async def _rotate_forever(self, max_age: float) -> None:
        """Rotate each connection as it comes due (``_rotation_due``), connections side by
        side, starts at least ``rotation_stagger`` apart, each only while the attempt budget
        has room beyond the redial reserve. The rotations are tasks of this one."""
        async with asyncio.TaskGroup() as rotations:
            while True:
                candidates = self._rotation_starts()
                if not candidates:
                    await asyncio.sleep(min(max_age, _REPLAN))
                    continue
                when, shard = candidates[0]
                wait = when - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(min(wait, _REPLAN))  # shards change meanwhile
                    continue
                if not await self._gate.wait_for_room(self._reserve(), _REPLAN):
                    continue
                shard.rotating = True
                rotations.create_task(self._rotation(shard), name=f"networkpype-rotate-{shard.id}")
                await asyncio.sleep(self._stagger)

    async def _rotation(self, shard: Shard) -> None:
        try:
            await self._rotate(shard)
        except (ConnectionError, TimeoutError) as exc:
            logger.info("sharded manager: rotation of %s not done: %s", shard.id, exc)
        except Exception:
            logger.exception("sharded manager: rotation of %s failed; retrying later", shard.id)
        finally:
            shard.rotating = False

    async def rotate(self, connection_id: str) -> None:
        """Replace connection ``connection_id`` make-before-break: a new connection opens and
        subscribes to the same topics (acknowledged) before the old one closes. The consumer
        sees ``RotationStarted``/``RotationFinished`` around the overlap. Does nothing for a
        connection that is down or already rotating; raises what ended the rotation."""
        shard = self._shard(connection_id)
        if shard is None or not shard.connection.connected or shard.rotating:
            return  # gone, or down (maybe cooling off at the venue's request): not now
        shard.rotating = True
        try:
            await self._rotate(shard)
        finally:
            shard.rotating = False

    async def _rotate(self, old: Shard) -> None:
        rotation = Rotation(self, old)
        new = await self._open_shard(append=False, rotation=rotation)
        # Not rotated itself (nor given new topics) before this rotation has ended: a chain
        # of overlaps would have three connections deliver the same topics at once.
        new.rotating = True
        # The old one, if it drops now (the venue's age limit, say), waits for the outcome
        # rather than cost an attempt of its own.
        self._replacing[old.id] = rotation
        swapped = False
        try:
            async with self._lock:  # what the old one carries now; later changes: at the swap
                groups: dict[int, list[str]] = {}
                for topic, request in old.topics.items():
                    groups.setdefault(id(request), []).append(topic)
                raw = list(old.raw)
                self._queue.put_nowait(
                    RotationStarted(
                        connection_id=old.id,
                        at=time.time(),
                        replacement=new.id,
                        topics=tuple(old.topics),
                    )
                )
                waits = []
                for group in groups.values():
                    waits.extend(await self._send_subscribes(new, group))
                for request in raw:
                    new.raw.append(request)
                    await self._ask(Subscribe(request=request, connection_id=new.id))
            rejected = await self._confirm_all(new, waits, rotation)
            async with self._lock:
                if old not in self._shards:  # given up on meanwhile: its topics are lost
                    raise GaveUpError(f"{old.id} was given up on during its rotation")
                self._shards[self._shards.index(old)] = new
                swapped = rotation.swapped = True
                incarnation = new.connection.opened_at
                self._rotations.pop(new.id, None)
                # Unsubscribed from the old one during the rotation: gone from the new one too;
                # subscribed to it meanwhile (a call that planned before the rotation): added.
                gone = [t for t in new.topics if t not in old.topics and t not in rejected]
                if gone:
                    await self._unsubscribe_on(new, gone)
                added = [t for t in old.topics if t not in new.topics and t not in rejected]
                late = await self._send_subscribes(new, added) if added else []
            if late:
                rejected |= await self._confirm_all(new, late)
            if rejected:
                self._report_lost(new.id, rejected)
            # Both deliver for a moment: what the old one had in flight still arrives,
            # and the new one's first messages are on their way before the old one goes.
            await asyncio.sleep(self._overlap)
            if not new.connection.connected or new.connection.opened_at != incarnation:
                # The new one dropped in the overlap: the old one goes on delivering until the
                # new one's replay is acknowledged (closing it now would leave a gap no event
                # names).
                # Its replay's answers count from its reconnection (from now while it is down).
                conn = new.connection
                await self._confirm_replay(
                    new, conn.opened_at if conn.connected else time.monotonic()
                )
        finally:
            self._rotations.pop(new.id, None)
            # Whatever happens (a disconnect() cancelling us included), the connection
            # that is not in the list is closed: no shard outlives the manager.
            try:
                await self._close_shard(old if swapped else new)
            finally:
                self._replacing.pop(old.id, None)
                rotation.ended.set()
                new.rotating = False
                self._queue.put_nowait(
                    RotationFinished(
                        connection_id=old.id,
                        at=time.time(),
                        replacement=new.id,
                        aborted=not swapped,
                    )
                )
        logger.info("sharded manager: rotated %s -> %s", old.id, new.id)


class Rotation:
    """One rotation under way: the shard it replaces, as it was when the rotation began."""

    __slots__ = ("dialled", "ended", "manager", "old", "opened_at", "swapped")

    def __init__(self, manager: Rotations, old: Shard) -> None:
        self.manager = manager
        self.old = old
        self.opened_at = old.connection.opened_at
        self.dialled = False  # the replacement's first attempt has begun
        self.swapped = False  # the replacement took over
        self.ended = asyncio.Event()

    def stale(self) -> str | None:
        """Why the rotation has no reason left (for the attempt gate), or None."""
        old = self.old
        if old not in self.manager._shards:
            return f"{old.id} was closed or given up on"
        if not old.connection.connected:
            return f"{old.id} is down: its redial comes first"
        if old.connection.opened_at != self.opened_at:
            return f"{old.id} was redialled meanwhile: it is new"
        return None


@contextlib.asynccontextmanager
async def _never() -> AsyncIterator[None]:
    """An attempt that never starts (the gate of a connection about to be closed for good:
    closing it cancels the wait)."""
    await asyncio.Event().wait()
    yield  # pragma: no cover
