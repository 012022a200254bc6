"""The asyncio actor runtime: pykka semantics on an event loop, async handlers, no blocking.

pykka's own test-suite also runs against this runtime (tests/pykka_suite/run.py); these tests
cover what that suite cannot: actors on the caller's loop, awaiting, async hooks, blocking-call
errors, cancellation and the library's loop thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pykka
import pytest
from pykka import ActorDeadError, ActorRegistry
from pykka.messages import ProxySetAttr

from networkpype.actors import runtime
from networkpype.protocol.errors import BlockingCallError
from networkpype.runtime import (
    AsyncioActor,
    AsyncioFuture,
    LoopThread,
    get_runtime_loop,
    stop_actor,
    stop_all_actors,
    stop_owned_actor,
)
from tests.timing import MS, wait_until

WAIT = 1000 * MS  # the bound for anything that should happen "at once"


@pytest.fixture(autouse=True)
def _no_leftover_actors() -> Iterator[None]:
    yield
    # Actors on a test's own loop were cancelled (and so stopped) when that loop closed; the
    # library loop's actors are stopped here, blocking, from this loop-less thread.
    ActorRegistry.stop_all(timeout=WAIT)
    assert ActorRegistry.get_all() == []


class Recorder(AsyncioActor):
    """Records what happens to it, on which loop and thread."""

    instances: list[Recorder] = []

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        Recorder.instances.append(self)

    def on_start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.current_thread()
        self.log.append("start")

    def on_stop(self) -> None:
        self.log.append("stop")

    def on_receive(self, message: Any) -> Any:
        self.log.append(message)
        if message == "fail":
            raise ValueError("fail")
        return ("got", message)

    def double(self, x: int) -> int:
        return 2 * x

    async def slow_double(self, x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x


class Gate(AsyncioActor):
    """An async handler that waits for a gate, to show the inbox waits for it."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate
        self.handled: list[str] = []

    async def on_receive(self, message: Any) -> Any:
        if message == "wait":
            await self.gate.wait()
        self.handled.append(message)
        return list(self.handled)


async def test_actor_stopped_is_a_well_formed_threading_event() -> None:
    ref = Recorder.start()
    flag = ref.actor_stopped
    assert isinstance(flag, threading.Event)
    assert repr(flag).endswith(": unset>")  # raised AttributeError before
    await stop_actor(ref)
    assert flag.is_set() and repr(flag).endswith(": set>") and flag.wait(0)


async def test_tell_then_ask_from_the_loop_replies_in_order() -> None:
    ref = Recorder.start()
    ref.tell("a")
    ref.tell("b")

    reply = await ref.ask("c", block=False)

    assert reply == ("got", "c")
    assert await ref.proxy().log == ["start", "a", "b", "c"]


async def test_proxy_calls_sync_and_async_methods_and_attributes() -> None:
    proxy = Recorder.start().proxy()

    assert await proxy.double(4) == 8
    assert await proxy.slow_double(5) == 10
    assert await proxy.log == ["start"]
    # pykka's proxy attribute assignment blocks for the reply, so on a loop it is refused...
    with pytest.raises(BlockingCallError):
        proxy.log = ["replaced"]
    # ...and the non-blocking form is an ask of the same message.
    setting = ProxySetAttr(attr_path=("log",), value=["replaced"])
    await proxy.actor_ref.ask(setting, block=False)
    assert await proxy.log == ["replaced"]


async def test_ask_reraises_the_handler_exception_and_the_actor_lives_on() -> None:
    ref = Recorder.start()

    with pytest.raises(ValueError, match="fail"):
        await ref.ask("fail", block=False)

    assert ref.is_alive()
    assert await ref.ask("after", block=False) == ("got", "after")


async def test_an_awaiting_handler_holds_up_its_own_inbox_but_not_the_loop() -> None:
    gate = asyncio.Event()
    ref = Gate.start(gate)
    first = ref.ask("wait", block=False)
    second = ref.ask("next", block=False)
    other = Recorder.start()

    # Another actor on the same loop answers while Gate's handler is suspended.
    assert await other.ask("ping", block=False) == ("got", "ping")
    await asyncio.sleep(10 * MS)  # a chance to answer, which Gate must not take
    with pytest.raises(pykka.Timeout):
        first.get(timeout=0)
    with pytest.raises(pykka.Timeout):
        second.get(timeout=0)

    gate.set()
    assert await first == ["wait"]
    assert await second == ["wait", "next"]


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_lifecycle_hooks_run_in_order_on_the_loop(style: str) -> None:
    events: list[str] = []

    class SyncHooks(AsyncioActor):
        def on_start(self) -> None:
            events.append("start")

        def on_receive(self, message: Any) -> Any:
            events.append(message)

        def on_stop(self) -> None:
            events.append("stop")

    class AsyncHooks(AsyncioActor):
        async def on_start(self) -> None:  # type: ignore[override]  # async hooks: see runtime
            await asyncio.sleep(0)
            events.append("start")

        async def on_receive(self, message: Any) -> Any:
            events.append(message)

        async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
            await asyncio.sleep(0)
            events.append("stop")

    cls = SyncHooks if style == "sync" else AsyncHooks
    ref = cls.start()
    ref.tell("msg")

    assert await stop_actor(ref) is True

    assert events == ["start", "msg", "stop"]
    assert not ref.is_alive()
    assert await stop_actor(ref) is False


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_on_failure_runs_for_a_told_message_that_raises(style: str) -> None:
    failed = asyncio.Event()
    seen: list[Any] = []

    class Failing(AsyncioActor):
        def on_receive(self, message: Any) -> Any:
            raise RuntimeError("boom")

        def on_stop(self) -> None:
            seen.append("on_stop must not run after a failure")

    class SyncFailure(Failing):
        def on_failure(
            self,
            exception_type: type[BaseException] | None,
            exception_value: BaseException | None,
            traceback: TracebackType | None,
        ) -> None:
            seen.append(exception_value)
            failed.set()

    class AsyncFailure(Failing):
        async def on_failure(  # type: ignore[override]  # async hooks: see runtime
            self,
            exception_type: type[BaseException] | None,
            exception_value: BaseException | None,
            traceback: TracebackType | None,
        ) -> None:
            await asyncio.sleep(0)
            seen.append(exception_value)
            failed.set()

    ref = (SyncFailure if style == "sync" else AsyncFailure).start()
    ref.tell("anything")

    await asyncio.wait_for(failed.wait(), WAIT)
    assert len(seen) == 1
    assert isinstance(seen[0], RuntimeError)
    assert not ref.is_alive()
    assert ref not in ActorRegistry.get_all()


async def test_async_on_start_failure_stops_the_actor() -> None:
    class EarlyFailing(AsyncioActor):
        async def on_start(self) -> None:  # type: ignore[override]  # async hooks: see runtime
            await asyncio.sleep(0)
            raise RuntimeError("on_start failed")

    ref = EarlyFailing.start()

    with pytest.raises(ActorDeadError):
        await asyncio.wait_for(ref.ask("hello", block=False), WAIT)
    assert not ref.is_alive()


async def test_messages_left_in_the_inbox_at_stop_get_actor_dead_error() -> None:
    gate = asyncio.Event()
    ref = Gate.start(gate)
    ref.tell("wait")
    stopping = ref.stop(block=False)
    late = ref.ask("late", block=False)
    gate.set()

    assert await stopping is True
    with pytest.raises(ActorDeadError, match="stopped before handling the message"):
        await late


async def test_registry_finds_and_stops_actors_started_from_the_loop() -> None:
    Recorder.instances.clear()
    refs = [Recorder.start() for _ in range(3)]
    gate_ref = Gate.start(asyncio.Event())

    assert set(ActorRegistry.get_by_class(Recorder)) == set(refs)
    assert ActorRegistry.get_by_urn(gate_ref.actor_urn) == gate_ref
    ActorRegistry.broadcast("hello", target_class=Recorder)

    assert await stop_all_actors() == [True, True, True, True]
    assert ActorRegistry.get_all() == []
    assert [actor.log for actor in Recorder.instances] == [["start", "hello", "stop"]] * 3


async def test_actor_started_from_the_loop_runs_on_that_loop() -> None:
    Recorder.instances.clear()
    ref = Recorder.start()
    await ref.ask("ping", block=False)

    (actor,) = Recorder.instances
    assert actor.loop is asyncio.get_running_loop()
    assert actor.thread is threading.current_thread()


def test_actor_started_without_a_loop_runs_on_the_runtime_loop_thread() -> None:
    Recorder.instances.clear()
    ref = Recorder.start()

    # A foreign thread may block on the reply, as with pykka's thread actors.
    assert ref.ask("ping", timeout=WAIT) == ("got", "ping")
    assert ref.proxy().double(21).get(timeout=WAIT) == 42

    (actor,) = Recorder.instances
    assert actor.loop is get_runtime_loop()
    assert actor.thread is not threading.current_thread()
    assert actor.thread is not None and actor.thread.daemon
    assert ref.stop(timeout=WAIT) is True


@pytest.mark.timeout(5)  # a regression would deadlock the loop: fail fast instead
async def test_blocking_get_on_a_loop_thread_raises_instead_of_deadlocking() -> None:
    ref = Recorder.start()

    started = time.monotonic()
    with pytest.raises(BlockingCallError, match="await"):
        ref.ask("ping")  # block=True on the loop that would have to answer it
    with pytest.raises(BlockingCallError):
        ref.ask("ping", block=False).get(timeout=5)
    assert time.monotonic() - started < 1000 * MS  # not the 5 s get() would block

    pending = ref.ask("ping", block=False)
    with pytest.raises(pykka.Timeout):
        pending.get(timeout=0)  # a non-blocking poll is fine
    await pending
    assert pending.get() == ("got", "ping")  # a ready result is fine too

    # The blocking stop is refused too, after its stop request went out (as with a timeout).
    with pytest.raises(BlockingCallError):
        ref.stop()
    await wait_until(lambda: not ref.is_alive(), "stopped", timeout=WAIT)


async def test_await_works_for_an_actor_on_another_loop_thread() -> None:
    loop_thread = LoopThread(name="test-other-loop")
    loop_thread.start()
    try:

        async def start_there() -> pykka.ActorRef[Recorder]:
            return Recorder.start()

        ref = loop_thread.run_coroutine(start_there()).result(WAIT)
        assert await asyncio.wait_for(ref.ask("x", block=False), WAIT) == ("got", "x")
        assert await asyncio.wait_for(stop_actor(ref), WAIT) is True
    finally:
        loop_thread.shutdown(WAIT)


async def test_future_set_from_a_foreign_thread_wakes_the_awaiting_loop() -> None:
    future: AsyncioFuture[int] = AsyncioFuture()
    setter = threading.Timer(0.01, future.set, args=(7,))
    setter.start()

    assert await asyncio.wait_for(future, WAIT) == 7
    setter.join()


def test_future_get_from_a_foreign_thread_blocks_until_set_and_times_out() -> None:
    future: AsyncioFuture[int] = AsyncioFuture()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.01)

    threading.Timer(0.01, future.set, args=(3,)).start()
    assert future.get(timeout=WAIT) == 3
    with pytest.raises(queue.Full):
        future.set(4)


async def test_futures_with_get_hooks_are_awaitable_without_blocking_the_loop() -> None:
    gate = asyncio.Event()
    ref = Gate.start(gate)
    pending = ref.ask("wait", block=False)
    mapped = pending.map(len)
    joined = pending.join(ref.ask("x", block=False))
    stopped = ref.stop(block=False)

    async def release() -> None:
        await asyncio.sleep(10 * MS)
        gate.set()

    # All three hooks wait on replies the same loop has yet to produce: awaiting them must
    # leave the loop running (release() runs), or this would hang.
    async with asyncio.TaskGroup() as tg:
        tg.create_task(release())
        results = await asyncio.wait_for(asyncio.gather(mapped, joined, stopped), WAIT)

    assert results == [1, [["wait"], ["wait", "x"]], True]


async def test_hook_over_a_threading_future_is_awaited_in_the_executor() -> None:
    foreign: pykka.ThreadingFuture[int] = pykka.ThreadingFuture()
    ours: AsyncioFuture[int] = AsyncioFuture()
    ours.set(1)
    joined = ours.join(foreign)
    threading.Timer(0.01, foreign.set, args=(2,)).start()

    assert await asyncio.wait_for(joined, WAIT) == [1, 2]


async def test_stop_actor_times_out_when_on_stop_hangs() -> None:
    release = asyncio.Event()
    finished = asyncio.Event()

    class SlowStop(AsyncioActor):
        async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
            await release.wait()
            finished.set()

    ref = SlowStop.start()
    with pytest.raises(TimeoutError):
        await stop_actor(ref, timeout=0.01)

    assert not finished.is_set()
    release.set()
    await asyncio.wait_for(finished.wait(), WAIT)  # the stop went on after the timeout
    assert await stop_actor(ref) is False


async def test_stop_owned_actor_finishes_the_stop_before_a_cancellation_goes_on() -> None:
    release = asyncio.Event()
    finished = asyncio.Event()

    class SlowStop(AsyncioActor):
        async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
            await release.wait()
            finished.set()

    ref = SlowStop.start()
    stopping = asyncio.create_task(stop_owned_actor(ref))
    await asyncio.sleep(10 * MS)
    stopping.cancel()  # twice: a cleanup path may be cancelled again
    await asyncio.sleep(10 * MS)
    stopping.cancel()
    await asyncio.sleep(10 * MS)
    assert not stopping.done() and ref.is_alive() is False  # unregistered, on_stop running
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(stopping, WAIT)
    assert finished.is_set()  # the cancellation surfaced only once on_stop had run
    assert await stop_owned_actor(ref) is False  # already stopped: returns at once


async def test_cancelling_the_actor_task_stops_it_and_is_not_swallowed() -> None:
    gate = asyncio.Event()
    stops: list[str] = []

    class Cancellable(Gate):
        instance: Cancellable | None = None

        def on_start(self) -> None:
            Cancellable.instance = self

        def on_stop(self) -> None:
            stops.append("stop")

    ref = Cancellable.start(gate)
    in_handler = ref.ask("wait", block=False)
    queued = ref.ask("queued", block=False)
    await asyncio.sleep(0)  # let the actor start and enter its handler
    actor = Cancellable.instance
    assert actor is not None and actor._actor_task is not None

    actor._actor_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await actor._actor_task

    assert actor._actor_task.cancelled()
    assert stops == ["stop"]
    assert not ref.is_alive()
    with pytest.raises(ActorDeadError):
        await in_handler
    with pytest.raises(ActorDeadError):
        await queued


async def test_cancelling_an_await_drops_its_waiter() -> None:
    future: AsyncioFuture[int] = AsyncioFuture()
    waiting = asyncio.ensure_future(future)
    await asyncio.sleep(0)
    assert future._waiters is not None and len(future._waiters) == 1

    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert future._waiters == []


def test_actors_on_a_closing_loop_are_stopped_with_it() -> None:
    Recorder.instances.clear()

    async def main() -> pykka.ActorRef[Recorder]:
        ref = Recorder.start()
        await ref.ask("hi", block=False)
        return ref

    ref = asyncio.run(main())

    assert not ref.is_alive()
    assert Recorder.instances[0].log == ["start", "hi", "stop"]


def test_loop_thread_shutdown_stops_its_actors_and_the_thread() -> None:
    loop_thread = LoopThread(name="test-shutdown")
    loop_thread.start()

    async def start_one() -> pykka.ActorRef[Recorder]:
        return Recorder.start()

    Recorder.instances.clear()
    ref = loop_thread.run_coroutine(start_one()).result(WAIT)
    assert ref.ask("x", timeout=WAIT) == ("got", "x")

    loop_thread.shutdown(WAIT)

    assert not loop_thread.is_alive()
    assert not ref.is_alive()
    assert Recorder.instances[0].log == ["start", "x", "stop"]


def test_tells_from_several_threads_keep_each_threads_order() -> None:
    Recorder.instances.clear()
    ref = Recorder.start()

    def send(tag: str) -> None:
        for i in range(200):
            ref.tell((tag, i))

    threads = [threading.Thread(target=send, args=(tag,)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ref.ask("done", timeout=WAIT)

    log = Recorder.instances[0].log
    for tag in "ab":
        assert [m[1] for m in log if isinstance(m, tuple) and m[0] == tag] == list(range(200))


def test_runtime_module_exports() -> None:
    from networkpype import actors

    for name in runtime.__all__:
        assert getattr(actors, name) is getattr(runtime, name)


async def test_an_idle_actor_holds_no_task_and_wakes_for_the_next_message() -> None:
    Recorder.instances.clear()
    ref = Recorder.start()
    assert await ref.ask("here", block=False) == ("got", "here")
    await asyncio.sleep(0)  # the serving task ends once the inbox is empty
    actor = Recorder.instances[0]
    assert actor._actor_task is None
    names = [task.get_name() for task in asyncio.all_tasks()]
    assert not any(name.startswith("Recorder-") for name in names), names

    # A put from another thread wakes it through the loop; one from the loop, directly.
    loop = asyncio.get_running_loop()
    from_thread = await loop.run_in_executor(None, lambda: ref.ask("thread", block=False))
    assert await from_thread == ("got", "thread")
    ref.tell("told")
    assert await ref.proxy().double(4) == 8
    assert actor.log == ["start", "here", "thread", "told"]
    assert await stop_actor(ref) is True
    assert actor.log[-1] == "stop"


def test_idle_actors_of_a_closing_loop_stop_in_order_with_their_messages() -> None:
    """An idle actor's stop at the loop's shutdown runs ``on_stop``, which may still ask an
    idle sibling (a manager stopping its supervisor): both stop, nothing is left waiting."""
    Recorder.instances.clear()
    stopped: list[str] = []

    class Parent(AsyncioActor):
        def __init__(self, child: pykka.ActorRef[Recorder]) -> None:
            super().__init__()
            self.child = child

        async def on_stop(self) -> None:  # type: ignore[override]  # async hooks: see runtime
            stopped.append("parent")
            await stop_actor(self.child)
            stopped.append("child stopped")

    async def main() -> tuple[pykka.ActorRef[Recorder], pykka.ActorRef[Parent]]:
        child = Recorder.start()
        parent = Parent.start(child)
        await child.ask("hi", block=False)
        return child, parent

    child, parent = asyncio.run(main())

    assert not child.is_alive() and not parent.is_alive()
    assert stopped == ["parent", "child stopped"]
    assert Recorder.instances[0].log == ["start", "hi", "stop"]
