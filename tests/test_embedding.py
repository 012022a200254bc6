"""The blocking facades (networkpype.embedding) from plain threads and a pykka host actor,
against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest

from networkpype.actors import LoopThread, get_loop_thread, run_coroutine
from networkpype.demo import DemoServerThread
from networkpype.embedding import SyncNetworkPype, SyncShardedNetworkPype, SyncStatistics
from networkpype.protocol.errors import (
    BlockingCallError,
    ConnectAbortedError,
    ConsumerOverflowError,
    GaveUpError,
    NotConnectedError,
)
from networkpype.protocol.events import Connected, GaveUp
from networkpype.protocol.messages import ChildGaveUp
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing.scripted import ScriptedServer
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.response import WebSocketResponse
from tests.test_examples import run_example
from tests.timing import MS, wait_until_sync

pytestmark = pytest.mark.timeout(60)

QUICK = 5000 * MS  # seconds: the bound of any wait that should take milliseconds


def sub(topic: str, request_id: int = 1, method: str = "SUBSCRIBE") -> WebSocketJSONRequest:
    return WebSocketJSONRequest(payload={"method": method, "params": [topic], "id": request_id})


def loop_tasks() -> set[str]:
    """Names of the tasks on the library's loop thread (but the one asking)."""

    async def names() -> set[str]:
        this = asyncio.current_task()
        return {t.get_name() for t in asyncio.all_tasks() if t is not this}

    return run_coroutine(names()).result(QUICK)


class Leftovers:
    """What exists before a test, to check that the facade leaves nothing behind."""

    def __init__(self) -> None:
        get_loop_thread()  # the shared loop thread may stay for reuse: take it as given
        self.threads = set(threading.enumerate())
        self.actors = set(pykka.ActorRegistry.get_all())
        self.tasks = loop_tasks()

    def assert_none(self) -> None:
        def threads() -> list[str]:
            return [t.name for t in set(threading.enumerate()) - self.threads if t.is_alive()]

        with contextlib.suppress(AssertionError):  # they end a moment after they say so
            wait_until_sync(lambda: not threads(), timeout=1000 * MS)
        assert threads() == []
        assert set(pykka.ActorRegistry.get_all()) - self.actors == set()
        assert loop_tasks() - self.tasks == set()


@pytest.fixture
def demo() -> Iterator[DemoServerThread]:
    with DemoServerThread(rate=100) as server:
        yield server


@pytest.fixture
def leftovers(demo: DemoServerThread) -> Leftovers:
    return Leftovers()  # after the server's thread started


class ScriptedThread:
    """networkpype.testing.ScriptedServer on a loop thread of its own, for sync tests."""

    def __init__(self) -> None:
        self.loop_thread = LoopThread(name="test-scripted-server")
        self.server = ScriptedServer()

    def run(self, make: Callable[[], Any]) -> Any:
        async def call() -> Any:
            result = make()
            return (await result) if asyncio.iscoroutine(result) else result

        return self.loop_thread.run_coroutine(call()).result(QUICK)

    def close_peer(self, index: int, code: int = 1001) -> None:
        self.run(lambda: self.server.wait_peer(index))
        self.run(lambda: self.server.peers[index].ws.close(code=code))


@pytest.fixture
def scripted() -> Iterator[ScriptedThread]:
    server = ScriptedThread()
    server.loop_thread.start()
    server.run(server.server.start)
    yield server
    server.run(server.server.stop)
    server.loop_thread.shutdown(QUICK)


class Host(pykka.ThreadingActor):
    """A host program's actor that hands what it is told to the test."""

    def __init__(self, told: queue.Queue[Any]) -> None:
        super().__init__()
        self.told = told

    def on_receive(self, message: Any) -> Any:
        self.told.put(message)
        return None


@pytest.fixture
def host() -> Iterator[tuple[pykka.ActorRef[Host], queue.Queue[Any]]]:
    told: queue.Queue[Any] = queue.Queue()
    ref = Host.start(told)
    yield ref, told
    ref.stop(timeout=QUICK)


class FailOn(WebSocketPostProcessor):
    """A user's post-processor with a bug: raises on the message whose data has ``fields``."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        data = response.data
        if isinstance(data, dict) and all(data.get(k) == v for k, v in self.fields.items()):
            raise ValueError(f"cannot process {self.fields}")
        return response


def read_trades(pype: SyncNetworkPype, count: int) -> list[int]:
    seqs: list[int] = []
    while len(seqs) < count:
        data = pype.get(timeout=QUICK).data
        if "seq" in data:
            seqs.append(data["seq"])
    return seqs


# -- the plain facade ------------------------------------------------------------------------


def test_connect_subscribe_and_read_from_another_thread(
    demo: DemoServerThread, leftovers: Leftovers
) -> None:
    with SyncNetworkPype(events=True) as pype:
        pype.connect(demo.url)
        assert pype.connected
        pype.subscribe(sub("btcusdt@trade"))
        seen: list[Any] = []
        reader = threading.Thread(target=lambda: seen.extend(pype.messages(timeout=QUICK)))
        reader.start()
        wait_until_sync(lambda: sum("seq" in getattr(m, "data", {}) for m in list(seen)) >= 5)
        stats = pype.statistics()
        assert pype.subscriptions() == [sub("btcusdt@trade")]
    reader.join(QUICK)
    assert not reader.is_alive()  # stop() ended its messages()
    assert isinstance(seen[0], Connected)
    assert seen[1].data == {"result": None, "id": 1}
    seqs = [m.data["seq"] for m in seen[2:]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert isinstance(stats, SyncStatistics)
    assert stats.connected and stats.subscriptions == 1 and stats.restarts == 0
    assert stats.messages_out == 1 and stats.messages_in >= 5 and stats.delivered >= 5
    leftovers.assert_none()


def test_several_threads_subscribe_and_read_every_message_once(
    demo: DemoServerThread, leftovers: Leftovers
) -> None:
    topics = [f"s{i}usdt@trade" for i in range(4)]
    got: list[tuple[str, int]] = []
    lock = threading.Lock()

    def read() -> None:
        for message in pype.messages(timeout=QUICK):
            if "seq" in message.data:
                with lock:
                    got.append((message.data["stream"], message.data["seq"]))

    with SyncNetworkPype(max_pending=8) as pype:
        pype.connect(demo.url)
        subscribers = [
            threading.Thread(target=pype.subscribe, args=(sub(t, i),)) for i, t in enumerate(topics)
        ]
        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in subscribers + readers:
            thread.start()
        for thread in subscribers:
            thread.join(QUICK)
        assert len(pype.subscriptions()) == 4
        wait_until_sync(lambda: len(got) >= 200, "200 messages read")
        pype.unsubscribe(pype.subscriptions()[0])
        assert len(pype.subscriptions()) == 3
    for thread in readers:
        thread.join(QUICK)
        assert not thread.is_alive()
    assert len(got) == len(set(got))  # nobody got a message twice
    for topic in topics:
        seqs = sorted(seq for t, seq in got if t == topic)
        assert seqs == list(range(1, len(seqs) + 1)), topic  # and none went missing
    leftovers.assert_none()


def test_the_default_throttler_actor_is_stopped_too(
    demo: DemoServerThread, leftovers: Leftovers
) -> None:
    with SyncNetworkPype() as pype:  # NetworkPype's own throttler: limit "default"
        pype.connect(demo.url)
        pype.send(WebSocketJSONRequest(payload="hello", throttler_limit_id="default"))
        assert pype.get(timeout=QUICK).data == "hello"
    leftovers.assert_none()  # its actor too


def test_overflow_error_is_raised_once_and_reading_goes_on(demo: DemoServerThread) -> None:
    with SyncNetworkPype(max_pending=2, max_queue=3, overflow="error") as pype:
        pype.connect(demo.url)
        pype.subscribe(sub("btcusdt@trade"))
        # 12 events, more than 2 + 3 + 1 are held: the manager's queue overflows
        wait_until_sync(lambda: pype.statistics().messages_in >= 12, "12 messages in")
        got: list[Any] = []
        with pytest.raises(ConsumerOverflowError):
            while True:
                got.append(pype.get(timeout=QUICK))
        # held: max_pending, max_queue, and the one the consumer task waits to hand over
        assert got[0].data["id"] == 1 and len(got) <= 2 + 3 + 1
        after = read_trades(pype, 3)  # and reading goes on, past the gap
        assert after[0] > got[-1].data["seq"] + 1
        assert after[1:] == [after[0] + 1, after[0] + 2]


def test_a_post_processor_error_is_raised_once_then_the_next_messages(
    scripted: ScriptedThread,
) -> None:
    leftovers = Leftovers()
    with SyncNetworkPype(ws_post_processors=[FailOn(n=3)]) as pype:
        pype.connect(scripted.server.url)
        peer = scripted.run(lambda: scripted.server.wait_peer(0))
        got: list[Any] = []
        for n in range(1, 7):  # one at a time: each message is a batch of its own
            scripted.run(functools.partial(peer.ws.send_str, json.dumps({"n": n})))
            try:
                got.append(pype.get(timeout=QUICK).data["n"])
            except ValueError as error:
                got.append(str(error))
        assert got == [1, 2, "cannot process {'n': 3}", 4, 5, 6]
        with pytest.raises(queue.Empty):
            pype.get_nowait()  # told once: nothing sticks
        assert pype.connected
    assert pype.get(timeout=0) is None
    leftovers.assert_none()


def test_a_burst_loses_only_the_message_whose_post_processor_raised(
    scripted: ScriptedThread,
) -> None:
    count = 50
    # max_pending=1: the consumer task holds 2 messages, the rest waits in the manager's
    # queue and is taken in one batch once the host reads.
    with SyncNetworkPype(ws_post_processors=[FailOn(n=7)], max_pending=1) as pype:
        pype.connect(scripted.server.url)
        peer = scripted.run(lambda: scripted.server.wait_peer(0))

        async def burst() -> None:
            for n in range(1, count + 1):
                await peer.ws.send_str(json.dumps({"n": n}))

        scripted.run(burst)
        wait_until_sync(lambda: pype.statistics().messages_in >= count, timeout=QUICK)
        got: list[int] = []
        errors: list[tuple[int, str]] = []
        while len(got) + len(errors) < count:
            try:
                got.append(pype.get(timeout=QUICK).data["n"])
            except ValueError as error:
                errors.append((len(got), str(error)))
        assert errors == [(6, "cannot process {'n': 7}")]
        assert got == [n for n in range(1, count + 1) if n != 7]
        with pytest.raises(queue.Empty):
            pype.get_nowait()


def test_errors_wait_for_room_like_messages_and_stop_stays_prompt(
    scripted: ScriptedThread,
) -> None:
    leftovers = Leftovers()
    pype = SyncNetworkPype(ws_post_processors=[FailOn()], max_pending=2)  # fails on every one
    pype.connect(scripted.server.url)
    peer = scripted.run(lambda: scripted.server.wait_peer(0))
    for n in range(1, 11):  # one at a time: each is taken (and raises) on its own
        scripted.run(functools.partial(peer.ws.send_str, json.dumps({"n": n})))
        wait_until_sync(lambda: pype.statistics().messages_in >= n, timeout=QUICK)  # noqa: B023
    # nobody reads: the consumer task waits for room
    wait_until_sync(lambda: pype.statistics().pending == 2, "2 pending", timeout=QUICK)
    started = time.monotonic()
    pype.stop(timeout=2.0)  # cancels it mid-wait
    assert time.monotonic() - started < 1000 * MS
    for _ in range(2):  # what was queued, then the end
        with pytest.raises(ValueError, match="cannot process"):
            pype.get(timeout=0)
    assert pype.get(timeout=0) is None
    leftovers.assert_none()


def test_get_times_out_and_get_nowait_polls(demo: DemoServerThread) -> None:
    with SyncNetworkPype() as pype:
        pype.connect(demo.url)
        with pytest.raises(queue.Empty):
            pype.get_nowait()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            pype.get(timeout=0.1)
        assert 0.1 <= time.monotonic() - started < 1000 * MS
        with pytest.raises(TimeoutError):
            next(pype.messages(timeout=0.05))
        pype.subscribe(sub("btcusdt@trade"))
        assert pype.get(timeout=QUICK).data == {"result": None, "id": 1}
        deadline = time.monotonic() + QUICK
        while True:
            try:
                assert pype.get_nowait().data["seq"] == 1
                break
            except queue.Empty:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    assert pype.get_nowait() is None  # stopped and drained
    assert pype.get(timeout=0) is None


def test_a_full_hand_off_stops_taking_and_nothing_is_lost(demo: DemoServerThread) -> None:
    with SyncNetworkPype(max_pending=3, max_queue=5) as pype:
        pype.connect(demo.url)
        pype.subscribe(sub("btcusdt@trade"))
        time.sleep(300 * MS)  # ~30 events at 100/s: far more than 3 + 5 fit
        wait_until_sync(lambda: pype.statistics().pending == 3, "3 pending")
        stats = pype.statistics()
        assert stats.pending == 3  # the consumer task waits for room...
        assert stats.messages_in < 30  # ... so the manager stopped reading the socket
        assert pype.get(timeout=QUICK).data["id"] == 1
        assert read_trades(pype, 40) == list(range(1, 41))


def test_a_command_times_out_and_stop_stays_prompt(demo: DemoServerThread) -> None:
    throttler = AsyncThrottler([RateLimit("slow", limit=1, time_interval=60.0)])
    pype = SyncNetworkPype(throttler)
    pype.connect(demo.url)
    request = WebSocketJSONRequest(payload="PING", throttler_limit_id="slow")
    pype.send(request)
    assert pype.get(timeout=QUICK).data == "PING"
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"send\(\) took more than 0.2 s"):
        pype.send(request, timeout=0.2)  # would wait ~60 s for its rate limit
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    pype.stop(timeout=2.0)  # while the manager's outbox still waits for that limit
    assert time.monotonic() - started < 1000 * MS


def test_gave_up_is_raised_once_then_the_stream_ends_and_the_host_actor_is_told(
    scripted: ScriptedThread, host: tuple[pykka.ActorRef[Host], queue.Queue[Any]]
) -> None:
    leftovers = Leftovers()
    pype = SyncNetworkPype(parent=host[0], events=True)
    pype.connect(scripted.server.url)
    outcomes: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        while True:
            try:
                if (item := pype.get(timeout=QUICK)) is None:
                    outcomes.put("ended")
                    return
                outcomes.put(item)
            except Exception as error:
                outcomes.put(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    scripted.run(lambda: scripted.server.wait_peer(0))
    scripted.run(lambda: scripted.server.peers[0].ws.send_str('{"n": 1}'))
    scripted.server.status = 403
    scripted.close_peer(0)
    report = host[1].get(timeout=QUICK)
    assert isinstance(report, ChildGaveUp)
    assert "403" in report.reason and isinstance(report.error, GaveUpError)
    for thread in readers:
        thread.join(QUICK)
    items = [outcomes.get_nowait() for _ in range(outcomes.qsize())]
    assert isinstance(items[0], Connected) and items[1].data == {"n": 1}
    assert any(isinstance(i, GaveUp) for i in items)
    errors = [i for i in items if isinstance(i, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], GaveUpError) and "403" in str(errors[0])
    assert items.index(errors[0]) > items.index(next(i for i in items if isinstance(i, GaveUp)))
    assert items.count("ended") == 3  # the one told, then every reader: the end
    assert pype.get(timeout=0) is None  # and anyone who reads later
    pype.stop()
    leftovers.assert_none()


def test_stop_is_prompt_mid_backoff_and_wakes_blocked_readers(
    scripted: ScriptedThread,
) -> None:
    leftovers = Leftovers()
    slow = RestartPolicy(backoff=BackoffPolicy(initial=30.0, cap=30.0))
    pype = SyncNetworkPype(restart_policy=slow, own_loop_thread=True)
    pype.connect(scripted.server.url)
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.append(pype.get()))
    reader.start()
    scripted.server.status = 503  # restart 1 is at once and fails; restart 2 waits ~30 s
    scripted.close_peer(0)
    wait_until_sync(lambda: scripted.server.attempts >= 2, "restart 2 failed")
    time.sleep(50 * MS)  # waiting for restart 3 now
    started = time.monotonic()
    pype.stop(timeout=2.0)
    assert time.monotonic() - started < 1000 * MS  # not the ~30 s backoff
    reader.join(QUICK)
    assert results == [None]
    assert not pype.loop_thread.is_alive()  # our own loop thread is gone too
    leftovers.assert_none()


def test_connect_with_retry_waits_for_the_venue_past_the_call_timeout(
    scripted: ScriptedThread,
) -> None:
    # A program that starts before its venue is up: retry=True retries the first
    # connection under the restart policy (the default's backoff: about 0.5 s, then 1 s),
    # and the call waits for it. call_timeout=0.2 s stands in for the default 10 s: the
    # wait is longer than it, and longer than an explicit timeout allows.
    scripted.server.status_script = [503, 503]
    pype = SyncNetworkPype(call_timeout=0.2)
    try:
        pype.connect(scripted.server.url, retry=True)
        assert scripted.server.attempts == 3
        assert pype.connected
    finally:
        pype.stop(timeout=2.0)
    scripted.server.status_script = [503, 503]
    pype = SyncNetworkPype()
    try:
        with pytest.raises(TimeoutError, match=r"connect\(\) took more than 0.2 s"):
            pype.connect(scripted.server.url, retry=True, timeout=0.2)
    finally:
        pype.stop(timeout=2.0)


def test_stop_ends_a_connect_retrying_in_another_thread(scripted: ScriptedThread) -> None:
    leftovers = Leftovers()
    scripted.server.status = 503  # the venue is down for good
    pype = SyncNetworkPype(call_timeout=0.2)
    errors: list[BaseException] = []

    def connect() -> None:
        try:
            pype.connect(scripted.server.url, retry=True)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=connect)
    thread.start()
    wait_until_sync(lambda: scripted.server.attempts >= 3, "retried after a backoff")
    assert thread.is_alive()  # past call_timeout, still retrying
    started = time.monotonic()
    pype.stop(timeout=2.0)
    thread.join(QUICK)
    assert not thread.is_alive()
    assert time.monotonic() - started < QUICK
    assert len(errors) == 1 and isinstance(errors[0], ConnectAbortedError), errors
    leftovers.assert_none()


def test_lifecycle_errors(demo: DemoServerThread) -> None:
    pype = SyncNetworkPype()
    with pytest.raises(NotConnectedError):
        pype.subscribe(sub("x"))  # started on demand, but not connected
    pype.stop()
    pype.stop()  # idempotent
    with pytest.raises(NotConnectedError, match="stopped"):
        pype.start()
    with pytest.raises(NotConnectedError, match="stopped"):
        pype.connect(demo.url)
    assert pype.get() is None


# -- never block the loop ----------------------------------------------------------------------


def test_blocking_calls_on_the_loop_thread_raise(demo: DemoServerThread) -> None:
    with SyncNetworkPype() as pype:
        pype.connect(demo.url)

        async def from_the_loop() -> list[str]:
            raised = []
            for call in (
                lambda: pype.subscribe(sub("btcusdt@trade")),
                pype.statistics,
                pype.get,
                lambda: pype.get(timeout=1.0),
                pype.stop,
            ):
                with pytest.raises(BlockingCallError, match="blocks, and this thread runs"):
                    call()
                raised.append("ok")
            with pytest.raises(queue.Empty):
                pype.get_nowait()  # polling is fine anywhere
            with pytest.raises(TimeoutError):
                pype.get(timeout=0)
            return raised

        assert pype.loop_thread.run_coroutine(from_the_loop()).result(QUICK) == ["ok"] * 5
        pype.subscribe(sub("btcusdt@trade"))  # still usable from a host thread
        assert pype.get(timeout=QUICK).data["id"] == 1


def test_on_escalate_callback_runs_on_the_loop_and_cannot_block(
    scripted: ScriptedThread,
) -> None:
    seen: queue.Queue[Any] = queue.Queue()

    def on_escalate(connection_id: str, error: GaveUpError) -> None:
        try:
            pype.statistics()
        except BlockingCallError as refused:
            seen.put((connection_id, error, refused))

    pype = SyncNetworkPype(on_escalate=on_escalate)
    try:
        pype.connect(scripted.server.url)
        scripted.server.status = 401
        scripted.close_peer(0)
        connection_id, error, refused = seen.get(timeout=QUICK)
        assert connection_id.startswith("ws")
        assert isinstance(error, GaveUpError) and "401" in str(error)
        assert isinstance(refused, BlockingCallError)
    finally:
        pype.stop()


# -- a pykka host ------------------------------------------------------------------------------


class Supervisor(pykka.ThreadingActor):
    """A host's supervisor actor that owns our subsystem and drives it from its thread."""

    def __init__(self) -> None:
        super().__init__()
        self.pype: SyncNetworkPype | None = None
        self.reports: list[Any] = []

    def start_subsystem(self, url: str) -> str:
        self.pype = SyncNetworkPype(parent=self.actor_ref)
        self.pype.connect(url)
        self.pype.subscribe(sub("btcusdt@trade"))
        return threading.current_thread().name

    def read(self, count: int) -> list[int]:
        assert self.pype is not None
        return read_trades(self.pype, count)

    def stop_subsystem(self) -> None:
        if self.pype is not None:
            self.pype.stop()

    def on_receive(self, message: Any) -> Any:
        self.reports.append(message)
        return None

    def on_stop(self) -> None:
        self.stop_subsystem()


def test_a_pykka_host_starts_reads_and_stops_the_subsystem_from_its_thread(
    demo: DemoServerThread, leftovers: Leftovers
) -> None:
    supervisor = Supervisor.start()
    proxy = supervisor.proxy()
    thread = proxy.start_subsystem(demo.url).get(timeout=QUICK)
    assert thread.startswith("Supervisor") and thread != get_loop_thread().name
    assert proxy.read(5).get(timeout=QUICK) == [1, 2, 3, 4, 5]
    proxy.stop_subsystem().get(timeout=QUICK)
    assert proxy.reports.get(timeout=QUICK) == []
    supervisor.stop(timeout=QUICK)
    leftovers.assert_none()


# -- the sharded facade ------------------------------------------------------------------------


def test_sharded_streams_per_topic_and_the_rest_through_get(
    demo: DemoServerThread, leftovers: Leftovers
) -> None:
    with SyncShardedNetworkPype(max_topics_per_connection=1) as pype:
        pype.connect(demo.url)
        eth = pype.stream("ethusdt@trade")
        result = pype.subscribe_topics(["btcusdt@trade", "ethusdt@trade"])
        assert result.accepted == ("btcusdt@trade", "ethusdt@trade") and not result.rejected
        assert pype.connections == 2
        assert isinstance(eth.get(timeout=QUICK), Connected)  # its shard's gap events
        eth_seqs = [eth.get(timeout=QUICK).data["seq"] for _ in range(5)]
        assert eth_seqs == [1, 2, 3, 4, 5]
        btc = [pype.get(timeout=QUICK).data for _ in range(5)]  # what no stream claims
        assert {d["stream"] for d in btc} == {"btcusdt@trade"}
        assert [d["seq"] for d in btc] == [1, 2, 3, 4, 5]
        stats = pype.statistics()
        assert [s.topic for s in stats.subscriptions] == ["btcusdt@trade", "ethusdt@trade"]
        pype.unsubscribe_topics(["ethusdt@trade"])
        rest = list(eth.messages(timeout=QUICK))  # what was queued, then the end
        assert all(m.data["stream"] == "ethusdt@trade" for m in rest)
        assert eth.get(timeout=QUICK) is None
        assert pype.connections == 1
    leftovers.assert_none()


def test_sharded_decoder_reaches_the_manager(demo: DemoServerThread, leftovers: Leftovers) -> None:
    # decoder="raw" once gave the connections raw text but left the manager on its JSON default.
    with SyncShardedNetworkPype(decoder="raw") as pype:
        pype.connect(demo.url)
        pype.subscribe_topics(["btcusdt@trade"])
        data = pype.get(timeout=QUICK).data
        assert isinstance(data, str) and '"btcusdt@trade"' in data
    leftovers.assert_none()


def read_around_an_error(reader: Any, after: int) -> tuple[list[int], list[str], list[int]]:
    """Trade numbers before the first error, the errors, and ``after`` trade numbers past it."""
    before: list[int] = []
    errors: list[str] = []
    past: list[int] = []
    while len(past) < after:
        try:
            item = reader.get(timeout=QUICK)
        except ValueError as error:
            errors.append(str(error))
            continue
        if isinstance(item, WebSocketResponse) and "seq" in item.data:
            (past if errors else before).append(item.data["seq"])
    return before, errors, past


def test_sharded_a_post_processor_error_reaches_each_reader_once(
    demo: DemoServerThread, leftovers: Leftovers
) -> None:
    failing = FailOn(stream="btcusdt@trade", seq=3)
    with SyncShardedNetworkPype(ws_post_processors=[failing], max_topics_per_connection=1) as pype:
        pype.connect(demo.url)
        eth = pype.stream("ethusdt@trade")
        pype.subscribe_topics(["btcusdt@trade", "ethusdt@trade"])
        told = "cannot process {'stream': 'btcusdt@trade', 'seq': 3}"
        before, errors, past = read_around_an_error(pype, 5)  # btcusdt@trade: no stream
        assert (before, errors, past) == ([1, 2], [told], [4, 5, 6, 7, 8])
        # Its topic is unknown (it raised before it had one): every stream is told, once.
        before, errors, past = read_around_an_error(eth, 5)
        assert errors == [told]
        seqs = before + past
        assert seqs == list(range(1, len(seqs) + 1))  # ethusdt@trade lost nothing
    leftovers.assert_none()


def test_sharded_give_up_reaches_readers_and_the_host_actor(
    host: tuple[pykka.ActorRef[Host], queue.Queue[Any]],
) -> None:
    leftovers = Leftovers()
    # The demo server's lifetime ends with a 1001 close: with no restarts allowed, that
    # first failure is given up on.
    with DemoServerThread(rate=100, lifetime=0.5) as server:
        pype = SyncShardedNetworkPype(parent=host[0], restart_policy=RestartPolicy(max_restarts=0))
        try:
            pype.connect(server.url)
            btc = pype.stream("btcusdt@trade")
            pype.subscribe_topics(["btcusdt@trade"])
            report = host[1].get(timeout=QUICK)
            assert isinstance(report, ChildGaveUp) and report.child_id == "shard1"
            with pytest.raises(GaveUpError):
                while btc.get(timeout=QUICK) is not None:
                    pass
            assert btc.get(timeout=QUICK) is None  # told once, then the end
            with pytest.raises(GaveUpError):
                pype.get(timeout=QUICK)
            assert pype.get(timeout=QUICK) is None
            late = pype.stream("ethusdt@trade")  # opened after the end: ends the same way
            with pytest.raises(GaveUpError):
                late.get(timeout=QUICK)
            assert late.get(timeout=QUICK) is None
        finally:
            pype.stop()
    leftovers.assert_none()


def test_embed_sync_example_against_a_given_server(demo: DemoServerThread) -> None:
    output = run_example("embed_sync.py", "--url", demo.url)
    assert "btcusdt@trade after its unsubscribe: 0" in output
    assert "threads left: 0, actors left: 0" in output
    stats = demo.statistics()
    assert stats.connections_accepted == 1  # one connection, never redialled
    assert stats.connections[0].messages_received == 3  # 2 SUBSCRIBEs, 1 UNSUBSCRIBE


def test_embed_pykka_host_example_against_a_given_server(demo: DemoServerThread) -> None:
    output = run_example("embed_pykka_host.py", "--url", demo.url)
    assert "host was told by its child: True" in output
    stats = demo.statistics()
    assert stats.connections_accepted == 1  # the first subsystem; the second is elsewhere
    assert stats.connections[0].messages_received == 1  # its one SUBSCRIBE
