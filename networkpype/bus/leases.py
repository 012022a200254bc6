"""``LeaseKeeper``: a collector's partition leases in a JetStream key-value bucket.

The bucket's TTL is the lease's: a key not written for ``ttl`` seconds is removed by the
server. A collector writes its membership key (``m.{id}``) and each slot it holds
(``p{partition}.r{replica}``, value: its id) every ``renew_interval`` seconds with a
compare-and-set on the key's last revision, so a slot has one holder at a time: ``create``
succeeds only on an absent key, ``update`` only for the holder of the revision it names.
When a collector dies its keys expire and the others' keepers take its slots at their next
tick (:func:`~networkpype.bus.partitions.plan_acquisitions`).

Changes reach the collector as :class:`LeaseChange` items on :attr:`LeaseKeeper.changes`
(the keeper never waits for the collector: renewing must go on while it subscribes).

While NATS cannot be reached no lease can be renewed or lost: the keeper keeps its slots
("in doubt") and the collector keeps serving them, buffering. Once NATS is back, a slot
whose key expired meanwhile is taken again if it is free, and given up (a change with
``acquired=False``) if another collector took it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.kv import KeyValue

from networkpype.bus._nats import raise_if_cancelled
from networkpype.bus.partitions import (
    MEMBER_PREFIX,
    Slot,
    member_key,
    parse_slot_key,
    plan_acquisitions,
)
from networkpype.protocol.errors import ConfigurationError

__all__ = ["LeaseChange", "LeaseKeeper", "LeaseSettings", "LeaseStatistics"]

logger = logging.getLogger(__name__)

_TRANSIENT = (OSError, TimeoutError, nats.errors.Error)  # NATS unreachable or slow


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """``partitions``: how the topic list is split; ``replicas``: collectors per partition
    (2: hot standby); ``ttl``: seconds a lease outlives its last renewal (the fail-over
    time's main part); ``renew_interval``: seconds between two renewals (default ``ttl / 3``);
    ``settle``: seconds a starting collector waits, registered, before it takes any slot,
    so that collectors started together see each other and share evenly (default
    ``renew_interval``); ``max_slots``: this collector's capacity (None: no cap);
    ``acquire_per_tick``: at most this many slots taken per renewal tick (None: no cap;
    the sharded manager paces connection attempts and subscriptions in any case)."""

    partitions: int = 16
    replicas: int = 1
    ttl: float = 3.0
    renew_interval: float | None = None
    settle: float | None = None
    max_slots: int | None = None
    acquire_per_tick: int | None = None

    def __post_init__(self) -> None:
        if self.partitions < 1 or self.replicas < 1:
            raise ConfigurationError("partitions and replicas must be at least 1")
        if not self.ttl >= 1.0:  # the server checks expiry about once a second
            raise ConfigurationError(f"lease ttl must be at least 1 s, got {self.ttl}")
        if self.renew_interval is not None and not 0 < self.renew_interval < self.ttl / 2:
            raise ConfigurationError(
                f"renew_interval must be > 0 and below ttl / 2 ({self.ttl / 2:g} s), "
                f"got {self.renew_interval}"
            )

    @property
    def interval(self) -> float:
        """Seconds between two renewal ticks."""
        return self.renew_interval if self.renew_interval is not None else self.ttl / 3

    @property
    def settle_time(self) -> float:
        return self.settle if self.settle is not None else self.interval


@dataclass(frozen=True, slots=True)
class LeaseChange:
    """``slot`` was taken (``acquired``; ``previous_owner`` as last seen) or lost."""

    slot: Slot
    acquired: bool
    previous_owner: str | None = None
    cause: str = ""


@dataclass(frozen=True, slots=True)
class LeaseStatistics:
    """A snapshot: ``held`` slots, ``members`` seen live at the last tick, ``in_doubt``
    slots not renewed for longer than the TTL (NATS unreachable), ``acquired``/``lost``
    counts since start."""

    held: tuple[Slot, ...]
    members: int
    in_doubt: int
    acquired: int
    lost: int


class LeaseKeeper:
    """See the module docstring. ``bucket``: the KV bucket's name (one per venue and
    deployment); :meth:`open` creates it if needed (``store_replicas`` copies in a NATS
    cluster), :meth:`run` is the keeper's task (the caller owns it), :meth:`release_all`
    hands every slot back at once (a clean shutdown: the others need not wait for the TTL)."""

    def __init__(
        self,
        js: JetStreamContext,
        bucket: str,
        collector_id: str,
        settings: LeaseSettings,
        *,
        store_replicas: int = 1,
    ) -> None:
        self._js = js
        self._bucket = bucket
        self._id = collector_id
        self._value = collector_id.encode()
        self._settings = settings
        self._store_replicas = store_replicas
        self._kv: KeyValue | None = None
        self._held: dict[Slot, int] = {}  # slot -> revision of our last write
        self._renewed: dict[Slot, float] = {}  # slot -> monotonic time of the last renewal
        self._member_revision = 0
        self._owners: dict[Slot, str] = {}  # slots of others, as last seen
        self._last_owner: dict[Slot, str] = {}
        self._members = 0
        self._acquired = self._lost = 0
        self._acquire_from = 0.0  # monotonic time before which no slot is taken
        self.changes: asyncio.Queue[LeaseChange] = asyncio.Queue()
        """Every change of this collector's slots, in order."""

    @property
    def held(self) -> tuple[Slot, ...]:
        return tuple(sorted(self._held))

    def others_serving(self, partition: int) -> tuple[str, ...]:
        """The other collectors holding a replica of ``partition``, as last seen (at the
        last renewal tick): with a hot standby, those that go on publishing its topics when
        this collector lets it go."""
        return tuple(
            sorted(
                {
                    owner
                    for slot, owner in self._owners.items()
                    if slot.partition == partition and owner and owner != self._id
                }
            )
        )

    def statistics(self) -> LeaseStatistics:
        """A frozen snapshot."""
        now = time.monotonic()
        doubt = sum(1 for t in self._renewed.values() if now - t > self._settings.ttl)
        return LeaseStatistics(self.held, self._members, doubt, self._acquired, self._lost)

    async def open(self) -> None:
        """Bind to (or create) the bucket and register this collector as a member."""
        try:
            self._kv = await self._js.key_value(self._bucket)
        except nats.js.errors.BucketNotFoundError:
            try:
                self._kv = await self._js.create_key_value(
                    js_api.KeyValueConfig(
                        bucket=self._bucket,
                        ttl=self._settings.ttl,
                        history=1,
                        storage=js_api.StorageType.FILE,
                        replicas=self._store_replicas,
                    )
                )
            except nats.js.errors.BadRequestError:  # created by another collector meanwhile
                self._kv = await self._js.key_value(self._bucket)
        status = await self._kv.status()
        if status.ttl is not None and abs(status.ttl - self._settings.ttl) > 0.01:
            raise ConfigurationError(
                f"lease bucket {self._bucket} has a TTL of {status.ttl:g} s, not the "
                f"{self._settings.ttl:g} s asked: use the same ttl on every collector "
                "(or delete the bucket)"
            )
        self._member_revision = await self._kv.put(member_key(self._id), self._value)

    async def run(self) -> None:
        """Renew, watch the others, take free slots: every ``renew_interval`` seconds,
        until cancelled."""
        interval = self._settings.interval
        self._acquire_from = time.monotonic() + self._settings.settle_time
        while True:
            started = time.monotonic()
            try:
                await self._tick(acquire=started >= self._acquire_from)
            except _TRANSIENT as exc:
                logger.info("%s: lease tick failed (%r); leases kept, in doubt", self._id, exc)
            raise_if_cancelled()
            await asyncio.sleep(max(0.0, started + interval - time.monotonic()))

    def reconnected(self) -> None:
        """NATS is back after an outage: keys may have expired meanwhile, and the other
        collectors renew theirs as they reconnect, each within a tick. Take nothing new for
        a TTL, so that only what truly has no holder is free."""
        self._acquire_from = max(self._acquire_from, time.monotonic() + self._settings.ttl)

    async def release_all(self, cause: str = "collector stopping") -> None:
        """Delete this collector's slot and membership keys (best effort: an unreachable
        NATS lets them expire instead)."""
        kv = self._kv
        for slot in list(self._held):
            revision = self._held.pop(slot)
            self._renewed.pop(slot, None)
            self.changes.put_nowait(LeaseChange(slot, acquired=False, cause=cause))
            if kv is not None:
                try:
                    await kv.delete(slot.key, last=revision)
                except (*_TRANSIENT, nats.js.errors.KeyValueError) as exc:
                    logger.info("%s: could not release %s (%r)", self._id, slot.key, exc)
        if kv is not None:
            try:
                await kv.delete(member_key(self._id))
            except (*_TRANSIENT, nats.js.errors.KeyValueError):
                pass

    # -- one tick -----------------------------------------------------------------------

    async def _tick(self, *, acquire: bool) -> None:
        kv = self._kv
        if kv is None:
            raise RuntimeError("open() the lease keeper first")
        self._member_revision = await self._renew(kv, member_key(self._id), self._member_revision)
        for slot in list(self._held):
            held = self._held.get(slot)
            if held is None:
                continue  # handed back meanwhile (give_up)
            revision = await self._renew(kv, slot.key, held)
            if slot not in self._held:
                continue  # handed back while we renewed: not ours to keep
            if revision:
                self._held[slot] = revision
                self._renewed[slot] = time.monotonic()
            else:
                self._lose(slot, f"lease taken over by {self._owners.get(slot, 'another')}")
        keys = await self._keys(kv)
        self._members = sum(1 for k in keys if k.startswith(MEMBER_PREFIX))
        taken = {s for s in map(parse_slot_key, keys) if s is not None}
        await self._observe_owners(kv, taken)
        if not acquire:
            return
        plan = plan_acquisitions(
            collector_id=self._id,
            partitions=self._settings.partitions,
            replicas=self._settings.replicas,
            members=self._members,
            held=self._held,
            taken=taken,
            limit=self._settings.acquire_per_tick,
            max_slots=self._settings.max_slots,
        )
        for slot in plan:
            await self._try_acquire(kv, slot)

    async def _renew(self, kv: KeyValue, key: str, revision: int) -> int:
        """The new revision of ``key``, or 0 if another collector holds it now."""
        try:
            return await kv.update(key, self._value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        # Our earlier write may have landed unseen, or the key expired (NATS was away).
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            try:
                return await kv.create(key, self._value)  # expired and still free: ours again
            except nats.js.errors.KeyWrongLastSequenceError:
                return 0
        if entry.value == self._value and entry.revision is not None:
            return await kv.update(key, self._value, last=entry.revision)
        owner = (entry.value or b"").decode(errors="replace")
        slot = parse_slot_key(key)
        if slot is not None:
            self._owners[slot] = owner
        return 0

    async def _keys(self, kv: KeyValue) -> list[str]:
        try:
            return await kv.keys()
        except nats.js.errors.NoKeysError:
            return []

    async def _observe_owners(self, kv: KeyValue, taken: set[Slot]) -> None:
        """Remember who holds the slots of others (named as ``previous_owner`` when one of
        them expires and is taken)."""
        for slot in list(self._owners):
            if slot not in taken:
                self._last_owner[slot] = self._owners.pop(slot)
        for slot in taken - set(self._held) - set(self._owners):
            try:
                entry = await kv.get(slot.key)
            except nats.js.errors.KeyNotFoundError:
                continue
            self._owners[slot] = (entry.value or b"").decode(errors="replace")

    async def _try_acquire(self, kv: KeyValue, slot: Slot) -> None:
        try:
            revision = await kv.create(slot.key, self._value)
        except nats.js.errors.KeyWrongLastSequenceError:
            return  # someone was faster
        self._held[slot] = revision
        self._renewed[slot] = time.monotonic()
        self._acquired += 1
        previous = self._last_owner.pop(slot, None) or self._owners.pop(slot, None)
        logger.info(
            "%s: took partition %d replica %d (previously %s)",
            self._id,
            slot.partition,
            slot.replica,
            previous or "nobody",
        )
        self.changes.put_nowait(LeaseChange(slot, acquired=True, previous_owner=previous))

    def _lose(self, slot: Slot, cause: str) -> None:
        self._held.pop(slot, None)
        self._renewed.pop(slot, None)
        self._lost += 1
        logger.warning("%s: lost partition %d replica %d: %s", self._id, *slot, cause)
        self.changes.put_nowait(LeaseChange(slot, acquired=False, cause=cause))

    async def give_up(self, slot: Slot, cause: str) -> None:
        """Hand one slot back (its partition's data could not be served here)."""
        revision = self._held.get(slot)
        if revision is None:
            return
        self._lose(slot, cause)
        if self._kv is not None:
            try:
                await self._kv.delete(slot.key, last=revision)
            except (*_TRANSIENT, nats.js.errors.KeyValueError) as exc:
                logger.info("%s: could not release %s (%r)", self._id, slot.key, exc)
