"""Topics split into partitions, and which lease slots a collector should try to take: pure
code, no clock read, no I/O.

A topic's partition is ``crc32(topic) % partitions``: every collector given the same topic
list and partition count computes the same split, on any host. Each partition has
``replicas`` lease slots (``p{partition}.r{replica}``); a collector holds at most one slot of
a partition (two copies from one process would not survive that process). With
``replicas=2`` every partition is served by two collectors at once (hot standby): both
publish, JetStream keeps one copy per message id, and losing one collector loses nothing.

:func:`plan_acquisitions` decides, at each tick of a collector's lease keeper, which free
slots to try, aiming at an even share: ``ceil(partitions * replicas / members)`` slots each.
Partitions that no collector serves come first (their data is being missed), primaries
before standbys, and each collector walks the slots from its own starting point so that
collectors starting together mostly try different slots.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "MEMBER_PREFIX",
    "Slot",
    "member_key",
    "parse_slot_key",
    "partition_of",
    "plan_acquisitions",
    "split_topics",
    "target_share",
]

MEMBER_PREFIX = "m."


class Slot(NamedTuple):
    """A lease slot: ``replica`` 0 is the primary, 1.. the hot standbys."""

    partition: int
    replica: int

    @property
    def key(self) -> str:
        """The slot's key in the lease bucket."""
        return f"p{self.partition}.r{self.replica}"


def member_key(collector_id: str) -> str:
    """The key of a collector's membership (its presence, renewed like a lease)."""
    return f"{MEMBER_PREFIX}{collector_id}"


def parse_slot_key(key: str) -> Slot | None:
    """The slot of a lease key, None for any other key."""
    partition, dot, replica = key.partition(".")
    if not dot or not partition.startswith("p") or not replica.startswith("r"):
        return None
    try:
        return Slot(int(partition[1:]), int(replica[1:]))
    except ValueError:
        return None


def partition_of(topic: str, partitions: int) -> int:
    """The partition of ``topic`` among ``partitions`` (stable across processes)."""
    return zlib.crc32(topic.encode()) % partitions


def split_topics(topics: Iterable[str], partitions: int) -> list[list[str]]:
    """``topics`` (duplicates removed, order kept) grouped by partition."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    groups: list[list[str]] = [[] for _ in range(partitions)]
    for topic in dict.fromkeys(topics):
        groups[partition_of(topic, partitions)].append(topic)
    return groups


def target_share(partitions: int, replicas: int, members: int) -> int:
    """Slots one of ``members`` live collectors should hold (at most one per partition)."""
    return min(partitions, math.ceil(partitions * replicas / max(1, members)))


def plan_acquisitions(
    *,
    collector_id: str,
    partitions: int,
    replicas: int,
    members: int,
    held: Iterable[Slot],
    taken: Iterable[Slot],
    limit: int | None = None,
    max_slots: int | None = None,
) -> list[Slot]:
    """The free slots to try now, best first.

    ``held``: this collector's slots; ``taken``: every slot with a live lease (this
    collector's included); ``members``: live collectors (this one included); ``limit``: at
    most this many slots this tick; ``max_slots``: this collector's capacity.
    """
    held = set(held)
    taken = set(taken) | held
    share = target_share(partitions, replicas, members)
    if max_slots is not None:
        share = min(share, max_slots)
    want = share - len(held)
    if limit is not None:
        want = min(want, limit)
    if want <= 0:
        return []
    mine = {s.partition for s in held}
    served = {s.partition for s in taken}
    start = zlib.crc32(collector_id.encode()) % partitions
    candidates: Sequence[Slot] = sorted(
        (
            Slot(p, r)
            for p in range(partitions)
            for r in range(replicas)
            if Slot(p, r) not in taken and p not in mine
        ),
        key=lambda s: (s.partition in served, s.replica, (s.partition - start) % partitions),
    )
    plan: list[Slot] = []
    for slot in candidates:
        if slot.partition in mine:
            continue
        plan.append(slot)
        mine = mine | {slot.partition}
        if len(plan) == want:
            break
    return plan
