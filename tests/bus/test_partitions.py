"""Partitions and the choice of slots to take: pure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from networkpype.bus.partitions import (
    Slot,
    parse_slot_key,
    partition_of,
    plan_acquisitions,
    split_topics,
    target_share,
)


def test_split_is_stable_across_processes_and_complete() -> None:
    topics = [f"t{i}@trade" for i in range(500)]
    groups = split_topics(topics + topics[:10], 7)
    assert sorted(t for g in groups for t in g) == sorted(topics)
    assert all(groups)  # 500 topics over 7 partitions: none empty
    code = "from networkpype.bus.partitions import partition_of as p; print(p('t42@trade', 7))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == partition_of("t42@trade", 7)


def test_slot_keys() -> None:
    assert Slot(3, 1).key == "p3.r1"
    assert parse_slot_key("p3.r1") == Slot(3, 1)
    for other in ("m.c1", "p3", "px.r1", "q1.r1"):
        assert parse_slot_key(other) is None


@pytest.mark.parametrize(
    ("partitions", "replicas", "members", "share"),
    [(12, 1, 3, 4), (12, 1, 2, 6), (12, 2, 3, 8), (12, 2, 1, 12), (10, 1, 3, 4), (4, 1, 0, 4)],
)
def test_target_share(partitions: int, replicas: int, members: int, share: int) -> None:
    assert target_share(partitions, replicas, members) == share


def _plan(**kw: object) -> list[Slot]:
    args: dict[str, object] = {
        "collector_id": "c1", "partitions": 6, "replicas": 1, "members": 3,
        "held": (), "taken": (),
    }  # fmt: skip
    args.update(kw)
    return plan_acquisitions(**args)  # type: ignore[arg-type]


def test_takes_its_share_and_no_more() -> None:
    assert len(_plan()) == 2
    assert _plan(held=[Slot(0, 0), Slot(1, 0)], taken=[Slot(0, 0), Slot(1, 0)]) == []
    assert len(_plan(limit=1)) == 1
    assert len(_plan(members=1, max_slots=3)) == 3


def test_never_two_slots_of_one_partition() -> None:
    plan = _plan(replicas=2, members=1)
    assert len(plan) == 6
    assert len({s.partition for s in plan}) == 6
    held = [Slot(0, 1)]
    assert all(s.partition != 0 for s in _plan(replicas=2, members=1, held=held, taken=held))


def test_unserved_partitions_come_first_and_taken_slots_are_skipped() -> None:
    taken = [Slot(p, 0) for p in range(5)]  # partition 5 has no collector at all
    plan = _plan(replicas=2, members=2, taken=taken)
    assert plan[0] == Slot(5, 0)
    assert not set(plan) & set(taken)


def test_collectors_start_from_different_slots() -> None:
    firsts = {_plan(collector_id=f"c{i}", partitions=12)[0] for i in range(8)}
    assert len(firsts) > 1
