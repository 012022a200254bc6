"""The supervisor actor with several children: restart types and strategies (OTP)."""

from __future__ import annotations

import asyncio
from typing import Any

from pykka import ActorRef

from networkpype.protocol.errors import ConnectionClosedError
from networkpype.protocol.messages import (
    ChildGaveUp,
    ChildRestarted,
    OpenChild,
    SocketFailed,
    StartChild,
)
from networkpype.runtime import AsyncioActor, stop_actor
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy, RestartType, Strategy
from networkpype.supervisor.supervisor import ChildSpec, SupervisorActor
from tests.timing import MS

FAST = BackoffPolicy(initial=0.01, cap=0.02, healthy_after=1.0)


class Child(AsyncioActor):
    """A stand-in child: it only exists; the test reports its failures for it."""


class Owner(AsyncioActor):
    """Starts each incarnation the supervisor asks for (``OpenChild``), as a manager does,
    and notes the generations it was asked for."""

    def __init__(self, starts: dict[str, list[int]]) -> None:
        super().__init__()
        self.starts = starts

    def on_receive(self, message: Any) -> None:
        if isinstance(message, OpenChild):
            self.starts[message.child_id].append(message.generation)
            message.reply.set_result(Child.start())


class Listener(AsyncioActor):
    def __init__(self, reports: asyncio.Queue[Any]) -> None:
        super().__init__()
        self.reports = reports

    def on_receive(self, message: Any) -> None:
        self.reports.put_nowait(message)


async def start_supervised(
    strategy: Strategy, types: dict[str, RestartType]
) -> tuple[ActorRef[SupervisorActor], dict[str, list[int]], asyncio.Queue[Any]]:
    reports: asyncio.Queue[Any] = asyncio.Queue()
    listener = Listener.start(reports)
    supervisor = SupervisorActor.start(listeners=[listener], strategy=strategy)
    starts: dict[str, list[int]] = {cid: [] for cid in types}
    owner = Owner.start(starts)
    for cid, kind in types.items():
        policy = RestartPolicy(restart_type=kind, backoff=FAST)
        spec = ChildSpec(child_id=cid, owner=owner, policy=policy)
        await (await supervisor.ask(StartChild(spec=spec), block=False))  # the ref, once started
    return supervisor, starts, reports


def fail(supervisor: ActorRef[Any], cid: str, generation: int) -> None:
    error = ConnectionClosedError("boom", code=1011)
    supervisor.tell(SocketFailed(connection_id=cid, error=error, generation=generation))


async def test_one_for_one_restarts_only_the_failed_child() -> None:
    supervisor, starts, reports = await start_supervised(
        Strategy.ONE_FOR_ONE, {"a": RestartType.PERMANENT, "b": RestartType.PERMANENT}
    )
    fail(supervisor, "a", 1)
    report = await asyncio.wait_for(reports.get(), 2)
    assert isinstance(report, ChildRestarted) and report.child_id == "a"
    assert starts == {"a": [1, 2], "b": [1]}
    await stop_actor(supervisor)


async def test_one_for_all_restarts_every_child() -> None:
    supervisor, starts, reports = await start_supervised(
        Strategy.ONE_FOR_ALL, {"a": RestartType.PERMANENT, "b": RestartType.PERMANENT}
    )
    fail(supervisor, "b", 1)
    restarted = {(await asyncio.wait_for(reports.get(), 2)).child_id for _ in range(2)}
    assert restarted == {"a", "b"}
    assert starts == {"a": [1, 2], "b": [1, 2]}
    await stop_actor(supervisor)


async def test_rest_for_one_restarts_the_failed_and_later_children() -> None:
    supervisor, starts, reports = await start_supervised(
        Strategy.REST_FOR_ONE,
        {"a": RestartType.PERMANENT, "b": RestartType.PERMANENT, "c": RestartType.PERMANENT},
    )
    fail(supervisor, "b", 1)
    restarted = {(await asyncio.wait_for(reports.get(), 2)).child_id for _ in range(2)}
    assert restarted == {"b", "c"}
    assert starts["a"] == [1]
    await stop_actor(supervisor)


async def test_temporary_child_is_not_restarted_and_stale_reports_are_ignored() -> None:
    supervisor, starts, reports = await start_supervised(
        Strategy.ONE_FOR_ONE, {"t": RestartType.TEMPORARY, "p": RestartType.PERMANENT}
    )
    fail(supervisor, "t", 1)
    fail(supervisor, "p", 99)  # a report from an incarnation that is not the current one
    ended = await asyncio.wait_for(reports.get(), 2)  # the owner is told: no restart comes
    assert isinstance(ended, ChildGaveUp) and ended.child_id == "t"
    assert "temporary" in ended.reason
    await asyncio.sleep(100 * MS)  # room for a wrongful restart or report to show up
    assert reports.empty()
    assert starts == {"t": [1], "p": [1]}
    assert await supervisor.proxy().restarts() == {"p": 0}  # "t" was dropped
    await stop_actor(supervisor)
