"""Supervision through the WebSocketManager, against real loopback servers."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import GaveUpError, HandshakeRejectedError, NotConnectedError
from networkpype.protocol.events import Disconnected, GaveUp, Reconnected
from networkpype.protocol.messages import ChildGaveUp
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest, WebSocketRequest
from tests.timing import MS, wait_until

FAST = RestartPolicy(backoff=BackoffPolicy(initial=0.01, cap=0.05, healthy_after=0.05))


async def manager(
    factory: ConnectionManagersFactory, policy: RestartPolicy = FAST, **kwargs: Any
) -> WebSocketManager:
    ws = await factory.get_ws_manager()
    # The factory's manager with a test policy: same connection, same pipeline.
    return WebSocketManager(
        ws.connection,
        throttler=factory.throttler,
        auth=factory.auth,
        restart_policy=policy,
        **kwargs,
    )


def sub(name: str) -> WebSocketJSONRequest:
    return WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": [name]})


@pytest.fixture
def factory() -> ConnectionManagersFactory:
    return ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 100, 1.0)]))


async def next_event(ws: WebSocketManager, kind: type) -> Any:
    async with asyncio.timeout(5):
        while True:
            item = await ws.receive(events=True)
            if isinstance(item, kind):
                return item


async def test_subscriptions_replayed_in_order_after_reconnect(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    ws = await manager(factory)
    await ws.connect(server.url)
    for name in ("a", "b", "c"):
        await ws.subscribe(sub(name))
    await ws.send(WebSocketJSONRequest(payload={"not": "replayed"}))
    first = await server.wait_peer()
    await first.wait_frames(4)
    await first.ws.close(code=1001)
    second = await server.wait_peer(1)
    frames = await second.wait_frames(3)
    assert [json.loads(f)["params"] for f in frames] == [["a"], ["b"], ["c"]]
    await asyncio.sleep(50 * MS)  # a wrongful replay's chance to arrive
    assert len(second.received) == 3  # the plain send is not replayed
    await ws.disconnect()
    await factory.close()


async def test_unsubscribe_removes_from_replay_and_on_connect_runs_first(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    logins = 0

    async def login() -> list[WebSocketRequest]:
        nonlocal logins
        logins += 1
        return [WebSocketJSONRequest(payload={"login": logins})]

    ws = await manager(factory, on_connect=login)
    await ws.connect(server.url)
    a, b = sub("a"), sub("b")
    await ws.subscribe(a)
    await ws.subscribe(b)
    await ws.unsubscribe(a, WebSocketJSONRequest(payload={"method": "UNSUBSCRIBE"}))
    assert await ws.subscriptions() == [b]
    first = await server.wait_peer()
    frames = await first.wait_frames(4)
    assert json.loads(frames[0]) == {"login": 1}
    await first.ws.close(code=1011)
    second = await server.wait_peer(1)
    frames = await second.wait_frames(2)
    assert [json.loads(f) for f in frames] == [{"login": 2}, b.payload]
    with pytest.raises(KeyError):
        await ws.unsubscribe(a)
    await ws.disconnect()
    await factory.close()


async def test_subscribe_during_gap_is_recorded_and_replayed(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    gate = asyncio.Event()

    async def hold_second(peer: Peer) -> None:
        if len(server.peers) == 2:
            await gate.wait()

    ws = await manager(factory)
    await ws.connect(server.url)
    await ws.subscribe(sub("a"))
    first = await server.wait_peer()
    await first.wait_frames(1)
    server.status = 503  # reconnections fail until the server is back
    await first.ws.close(code=1012)
    await next_event(ws, Disconnected)
    await ws.subscribe(sub("b"))  # no connection: recorded, not lost
    with pytest.raises(NotConnectedError):
        await ws.send(WebSocketJSONRequest(payload={}))
    server.on_peer = hold_second
    server.status = None
    second = await server.wait_peer(1)
    gate.set()
    frames = await second.wait_frames(2)
    assert [json.loads(f)["params"] for f in frames] == [["a"], ["b"]]
    await ws.disconnect()
    await factory.close()


async def test_auth_resigns_every_replay(server: ScriptedServer) -> None:
    from networkpype.auth import Auth
    from networkpype.rest.request import RESTRequest

    class Counter(Auth):
        n = 0

        async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
            return request

        async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
            Counter.n += 1
            request.payload["sig"] = Counter.n
            return request

    factory = ConnectionManagersFactory(
        throttler=AsyncThrottler([RateLimit("default", 100, 1.0)]), auth=Counter()
    )
    ws = await manager(factory)
    await ws.connect(server.url)
    private = WebSocketJSONRequest(payload={"channel": "orders"}, is_auth_required=True)
    await ws.subscribe(private)
    for i in range(2):
        peer = await server.wait_peer(i)
        frames = await peer.wait_frames(1)
        assert json.loads(frames[0])["sig"] == i + 1
        await peer.ws.close(code=1006 if i else 1001)
    assert private.payload == {"channel": "orders"}
    await ws.disconnect()
    await factory.close()


async def test_fatal_handshake_on_reconnect_gives_up_loudly(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    escalated: list[tuple[str, BaseException]] = []
    ws = await manager(factory, on_escalate=lambda cid, err: escalated.append((cid, err)))
    await ws.connect(server.url)
    first = await server.wait_peer()
    await first.ws.send_str("before")
    server.status = 403
    await first.ws.close(code=1001)
    items: list[Any] = []
    with pytest.raises(GaveUpError) as info:
        async for item in ws.iter_messages(events=True):
            items.append(item)
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, HandshakeRejectedError)
    assert "403" in str(info.value)
    kinds = [type(i).__name__ for i in items]
    assert kinds[:3] == ["Connected", "WebSocketResponse", "Disconnected"]
    assert kinds[-1] == "GaveUp" and isinstance(items[-1], GaveUp)
    assert len(escalated) == 1 and escalated[0][1] is info.value
    assert server.attempts == 2  # fatal: never retried
    await factory.close()


async def test_accept_then_close_escalates_with_growing_delays(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    async def slam(peer: Peer) -> None:
        await peer.ws.close(code=1011)

    policy = RestartPolicy(
        backoff=BackoffPolicy(initial=0.02, cap=1.0, jitter=0.0, healthy_after=5.0),
        max_restarts=4,
        within=60.0,
    )
    ws = await manager(factory, policy)
    await ws.connect(server.url)
    server.on_peer = slam
    first = await server.wait_peer()
    await first.ws.close(code=1011)
    stamps: list[float] = []
    with pytest.raises(GaveUpError, match="max_restarts=4"):
        async for item in ws.iter_messages(events=True):
            if isinstance(item, Reconnected):
                stamps.append(time.monotonic())
    # Opening never resets the backoff: the gaps between reconnections grow.
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 4
    assert gaps[-1] > gaps[0]
    assert server.attempts == 5
    await factory.close()


async def test_with_defaults_data_resets_the_backoff_and_accept_then_close_grows_it(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    """The default policy (issue 9, item 4), seen in ``Reconnected.attempts``: a connection
    that delivered data after its replay restarts as attempt 1 (at once); one the server
    closes before any data does not reset the count, so the waits grow (attempt 2 waits up
    to 0.5 s, attempt 3 up to 1 s): no tight loop against an accept-then-close server."""
    ws = await factory.get_ws_manager()  # the default restart policy
    await ws.connect(server.url)
    await ws.subscribe(sub("a"))

    async def slam(peer: Peer) -> None:
        await peer.ws.close(code=1000)  # accepted, closed before any data

    attempts: list[int] = []

    async def read_until(wanted: Any) -> None:
        async with asyncio.timeout(5):
            while True:
                item = await ws.receive(events=True)
                if isinstance(item, Reconnected):
                    attempts.append(item.attempts)
                elif getattr(item, "data", None) == wanted:
                    return

    for k in range(3):  # three connections that serve data, then drop
        peer = await server.wait_peer(k)
        await peer.wait_frames(1)  # the subscription, live or replayed
        for n in (1, 2):
            await peer.ws.send_str(json.dumps({"k": k, "n": n}))
            await read_until({"k": k, "n": n})
        if k == 2:
            server.on_peer = slam  # every connection from now on closes before any data
        peer.abort()
    async with asyncio.timeout(5):
        while len(attempts) < 5:
            item = await ws.receive(events=True)
            if isinstance(item, Reconnected):
                attempts.append(item.attempts)
    assert attempts == [1, 1, 1, 2, 3]
    await ws.disconnect()
    await factory.close()


async def test_with_defaults_a_venue_that_answers_then_closes_is_not_hammered(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    """A venue that answers every subscription (data after the replay) and then closes the
    connection itself: each restart is still not counted towards giving up, but the backoff
    grows (0, up to 0.5 s, up to 1 s, ...), so it is not redialled in a tight loop (before:
    thousands of handshakes in a few seconds on loopback, bench/recovery.py --mode
    ack-close). A slower machine can only make fewer attempts in the window."""

    answering: list[asyncio.Task[None]] = []

    async def answer_then_close(peer: Peer) -> None:
        await peer.wait_frames(1)  # the subscription, live or replayed
        await peer.ws.send_str('{"result": null, "id": 1}')
        await peer.ws.close(code=1011, message=b"try later")

    async def on_peer(peer: Peer) -> None:  # runs before the server reads: answer aside
        answering.append(asyncio.create_task(answer_then_close(peer)))

    server.on_peer = on_peer
    ws = await factory.get_ws_manager()  # the default restart policy
    await ws.connect(server.url)
    await ws.subscribe(sub("a"))
    await asyncio.sleep(1500 * MS)  # the window the attempts are counted in
    attempts = server.attempts
    # Dials at 0, then restarts after 0, <= 0.5 and <= 1 s: at most 4 in 1.5 s.
    assert 2 <= attempts <= 4, attempts
    assert ws.actor_ref is not None  # still trying: not given up on
    await ws.disconnect()
    await factory.close()
    for task in answering:
        task.cancel()
    await asyncio.gather(*answering, return_exceptions=True)


async def test_disconnect_mid_backoff_is_prompt(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    ws = await manager(factory, RestartPolicy(cool_off=10.0))
    await ws.connect(server.url)
    first = await server.wait_peer()
    await first.ws.close(code=1008)  # cool-off: a 10 s wait before the next attempt
    await next_event(ws, Disconnected)
    await asyncio.sleep(20 * MS)  # in the cool-off now
    started = time.monotonic()
    await ws.disconnect()
    elapsed = time.monotonic() - started
    assert elapsed <= 100 * MS, f"disconnect took {elapsed * 1000:.1f} ms mid-backoff"
    assert server.attempts == 1
    await factory.close()


async def test_disconnect_mid_handshake_is_prompt(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    stall = asyncio.Event()

    async def hang(peer: Peer) -> None:
        if len(server.peers) > 1:
            await stall.wait()

    ws = await manager(factory)
    await ws.connect(server.url)
    server.on_peer = hang
    first = await server.wait_peer()
    await first.ws.close(code=1001)
    await server.wait_peer(1)
    started = time.monotonic()
    await ws.disconnect()
    assert time.monotonic() - started < 1000 * MS  # the handshake stalls for ever
    stall.set()
    await factory.close()


async def test_host_actor_is_told_when_supervisor_gives_up(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    from networkpype.runtime import AsyncioActor, stop_actor

    reports: asyncio.Queue[Any] = asyncio.Queue()

    class Host(AsyncioActor):
        def on_receive(self, message: Any) -> None:
            reports.put_nowait(message)

    host = Host.start()
    ws = await manager(factory, parent=host)
    await ws.connect(server.url)
    server.status = 401
    await (await server.wait_peer()).ws.close(code=1001)
    report = await asyncio.wait_for(reports.get(), 5)
    assert isinstance(report, ChildGaveUp)
    assert isinstance(report.error, GaveUpError) and "401" in report.reason
    await stop_actor(host)
    await ws.disconnect()
    await factory.close()


async def test_no_data_timeout_replaces_a_silent_link(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    ws = await manager(factory)
    # Pings are answered (the server autopings) but no data ever comes.
    await ws.connect(server.url, ping_interval=0.05, pong_timeout=0.5, no_data_timeout=0.15)
    event = await next_event(ws, Disconnected)
    assert "no data" in event.cause and event.error == "LivenessTimeoutError"
    await next_event(ws, Reconnected)
    await ws.disconnect()
    await factory.close()


async def test_a_redial_is_judged_by_its_own_frames_not_the_last_connections(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    """After one silent spell of no_data_timeout, the next connection starts with a clean
    slate: the socket holder's stamps of the connection before must not condemn it before
    its first frame (which this venue sends 50 ms after the handshake)."""
    feeders: list[asyncio.Task[None]] = []

    async def feed(peer: Peer, stall_after: float | None) -> None:
        loop = asyncio.get_running_loop()
        end = None if stall_after is None else loop.time() + stall_after
        await asyncio.sleep(0.05)
        while end is None or loop.time() < end:
            await peer.ws.send_str('{"x": 1}')
            await asyncio.sleep(0.02)

    async def on_peer(peer: Peer) -> None:
        first = server.attempts == 1
        feeders.append(asyncio.create_task(feed(peer, 0.2 if first else None)))

    server.on_peer = on_peer
    ws = await manager(factory)
    await ws.connect(server.url, ping_interval=None, no_data_timeout=0.3)
    disconnects: list[str] = []
    after = 0
    async with asyncio.timeout(5):
        while after < 20:
            item = await ws.receive(events=True)
            assert item is not None and not isinstance(item, GaveUp)
            if isinstance(item, Disconnected):
                disconnects.append(item.cause)
            elif disconnects and not isinstance(item, Reconnected):
                after += 1
    assert len(disconnects) == 1 and "no data" in disconnects[0]
    await ws.disconnect()
    for task in feeders:
        task.cancel()
    await asyncio.gather(*feeders, return_exceptions=True)
    await factory.close()


async def test_application_pings_go_out_on_schedule(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    ws = await manager(factory)
    await ws.connect(server.url, app_ping_interval=0.03, app_ping_payload='{"op":"ping"}')
    peer = await server.wait_peer()
    frames = await peer.wait_frames(3)
    assert frames == ['{"op":"ping"}'] * 3
    await ws.disconnect()
    await factory.close()


async def test_disconnect_mid_replay_is_prompt_and_leaves_nothing_behind(
    server: ScriptedServer,
) -> None:
    from pykka import ActorRegistry

    # Replays paced at one message per 0.5 s: a reconnection's replay takes seconds.
    throttler = AsyncThrottler([RateLimit("slow", 1, 0.5)], safety_margin_pct=0)
    factory = ConnectionManagersFactory(throttler=throttler)
    actors_before = len(ActorRegistry.get_all())
    tasks_before = len(asyncio.all_tasks())
    ws = await manager(factory)
    await ws.connect(server.url)
    for i in range(3):
        request = WebSocketJSONRequest(payload={"n": i}, throttler_limit_id="slow")
        await ws.subscribe(request)
    first = await server.wait_peer()
    await first.ws.close(code=1001)
    second = await server.wait_peer(1)
    await second.wait_frames(1)  # the replay has started and now waits for its limit
    started = time.monotonic()
    await ws.disconnect()
    elapsed = time.monotonic() - started
    assert elapsed <= 0.1, f"disconnect took {elapsed * 1000:.1f} ms mid-replay"
    await asyncio.wait_for(second.closed.wait(), 1)
    await factory.close()
    # Only the throttler's actor (and its task) remains: the throttler is the caller's.
    assert len(ActorRegistry.get_all()) - actors_before <= 1
    assert len(asyncio.all_tasks()) <= tasks_before + 1


async def test_send_right_after_reconnected_goes_out_on_the_new_connection(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    ws = await manager(factory)
    await ws.connect(server.url)
    await ws.subscribe(sub("a"))
    first = await server.wait_peer()
    await first.wait_frames(1)
    await first.ws.close(code=1001)
    await next_event(ws, Reconnected)
    await ws.send(WebSocketJSONRequest(payload={"after": "reconnect"}))  # must not fail
    second = await server.wait_peer(1)
    frames = await second.wait_frames(2)
    assert [json.loads(f) for f in frames] == [sub("a").payload, {"after": "reconnect"}]
    await ws.disconnect()
    await factory.close()


async def test_temporary_connection_ends_the_stream_instead_of_hanging(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    from networkpype.supervisor.policy import RestartType

    ws = await manager(factory, RestartPolicy(restart_type=RestartType.TEMPORARY))
    await ws.connect(server.url)
    await (await server.wait_peer()).ws.close(code=1001)
    with pytest.raises(GaveUpError, match="temporary"):
        async with asyncio.timeout(2):
            async for _ in ws.iter_messages():
                pass
    assert server.attempts == 1
    await factory.close()


async def test_on_connect_that_raises_drops_the_connection_loudly(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    from networkpype.protocol.errors import ConfigurationError

    calls = 0

    async def login() -> list[WebSocketRequest]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConfigurationError("login credentials expired")
        return []

    ws = await manager(factory, on_connect=login)
    await ws.connect(server.url)
    await ws.subscribe(sub("a"))
    await (await server.wait_peer()).ws.close(code=1001)
    with pytest.raises(GaveUpError) as info:
        async with asyncio.timeout(3):
            async for _ in ws.iter_messages():
                pass
    assert isinstance(info.value.__cause__, ConfigurationError)  # fatal: escalated at once
    assert "credentials" in str(info.value)
    await factory.close()


async def test_message_timeouts_do_not_pile_up_while_nobody_reads(
    server: ScriptedServer, factory: ConnectionManagersFactory
) -> None:
    from networkpype.protocol.errors import MessageTimeoutError

    ws = await manager(factory)
    await ws.connect(server.url, message_timeout=0.02)
    await asyncio.sleep(300 * MS)  # about 15 timeouts pass unread
    peer = await server.wait_peer()
    await peer.ws.send_str('"next"')
    # "next" is queued behind Connected and the one timeout, however many fell meanwhile
    await wait_until(lambda: len(ws._queue) == 3, '"next" queued')
    with pytest.raises(MessageTimeoutError):
        await ws.receive()
    response = await asyncio.wait_for(ws.receive(), 1)  # not a second queued timeout
    assert response is not None and response.data == "next"
    await ws.disconnect()
    await factory.close()
