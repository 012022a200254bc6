"""``disconnect()`` is prompt from every state and leaves no socket open (issue 9, item 2).

Default settings throughout (the factory's manager: a 10 s handshake timeout, the default
restart policy), so a stop that waited for a stalled handshake would take seconds. The bound
asserted, ``PROMPT``, is ten times the promise (100 ms) so a busy machine does not fail it;
``bench/stop_latency.py`` measures the real figures. Each test also checks, from the server's
side, that the client's socket is closed (the server sees EOF or a reset).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ConnectAbortedError, ConnectionFailedError
from networkpype.testing.scripted import Peer, ScriptedServer
from networkpype.testing.stall import stall_gate
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest
from tests.timing import MS, wait_until

PROMPT = 1000 * MS  # disconnect() must return within this from any state
CLOSED = 1000 * MS  # what the server may take to see the client's close


def sub(name: str, limit_id: str | None = None) -> WebSocketJSONRequest:
    return WebSocketJSONRequest(
        payload={"method": "SUBSCRIBE", "params": [name]}, throttler_limit_id=limit_id
    )


@pytest.fixture
async def factory() -> ConnectionManagersFactory:
    # One place a minute for requests naming "subscribe"; nothing else is limited.
    throttler = AsyncThrottler([RateLimit("subscribe", 1, 60.0)])
    return ConnectionManagersFactory(throttler=throttler)


async def timed_disconnect(ws: WebSocketManager) -> float:
    started = time.monotonic()
    await ws.disconnect()
    elapsed = time.monotonic() - started
    assert elapsed < PROMPT, f"disconnect() took {elapsed:.3f} s"
    return elapsed


async def closed(peer: Peer) -> None:
    async with asyncio.timeout(CLOSED):
        await peer.closed.wait()


async def test_disconnect_during_the_first_stalled_handshake(
    factory: ConnectionManagersFactory,
) -> None:
    ws = await factory.get_ws_manager()
    async with stall_gate() as gate:
        connect = asyncio.create_task(ws.connect(gate.url))
        await gate.wait_held()  # the handshake has begun and will never be answered
        await timed_disconnect(ws)
        await gate.wait_all_closed(CLOSED)
        with pytest.raises(ConnectAbortedError, match=r"disconnect\(\) was called while"):
            await connect
        assert not ws.connected and ws.actor_ref is None
    await factory.close()


async def test_cancelling_connect_raises_cancelled_error_and_closes_the_socket(
    factory: ConnectionManagersFactory,
) -> None:
    ws = await factory.get_ws_manager()
    async with stall_gate() as gate:
        connect = asyncio.create_task(ws.connect(gate.url))
        await gate.wait_held()
        connect.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connect
        assert ws.actor_ref is None
        await gate.wait_all_closed(CLOSED)
        await timed_disconnect(ws)  # nothing left to stop
    await factory.close()


async def test_connect_again_after_an_interrupted_connect(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    """The interrupted connect() does not stop the manager's next connection."""
    ws = await factory.get_ws_manager()
    async with stall_gate() as gate:
        connect = asyncio.create_task(ws.connect(gate.url))
        await gate.wait_held()
        await timed_disconnect(ws)
        await ws.connect(server.url)  # before the interrupted connect() has resumed
        with pytest.raises(ConnectAbortedError):
            await connect
    assert ws.connected
    await ws.subscribe(sub("a"))
    assert await (await server.wait_peer()).wait_frames(1)
    await timed_disconnect(ws)
    await factory.close()


async def test_disconnect_while_connected_and_reading(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    await ws.subscribe(sub("a"))
    peer = await server.wait_peer()
    await peer.wait_frames(1)
    reader = asyncio.create_task(ws.receive())
    await asyncio.sleep(10 * MS)  # the reader waits
    await timed_disconnect(ws)
    await closed(peer)
    assert await asyncio.wait_for(reader, CLOSED) is None
    await factory.close()


async def test_disconnect_mid_backoff(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    peer = await server.wait_peer()
    server.status = 429  # the redial is refused: the supervisor cools off for 60 s
    peer.abort()
    await wait_until(lambda: server.attempts >= 2, "the redial refused")
    await asyncio.sleep(50 * MS)  # asleep in the cool-off now
    await timed_disconnect(ws)
    await closed(peer)
    assert server.live == []
    await factory.close()


async def test_disconnect_mid_redial_with_a_stalled_handshake(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    ws = await factory.get_ws_manager()
    async with stall_gate(target_port=server.port) as gate:
        await ws.connect(gate.url)
        await ws.subscribe(sub("a"))
        peer = await server.wait_peer()
        gate.silent = True  # the redial's handshake will hang
        peer.abort()
        await gate.wait_held()
        await timed_disconnect(ws)
        await gate.wait_all_closed(CLOSED)
        assert server.live == []
    await factory.close()


async def test_disconnect_mid_replay_waiting_on_the_throttler(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    await ws.subscribe(sub("a", "subscribe"))  # the minute's only place
    first = await server.wait_peer()
    await first.wait_frames(1)
    first.abort()
    second = await server.wait_peer(1)
    await asyncio.sleep(50 * MS)  # the replay waits ~60 s for the throttler
    assert second.received == []
    await timed_disconnect(ws)
    await closed(second)
    assert server.live == []
    await factory.close()


async def test_disconnect_after_give_up_and_when_already_disconnected(
    factory: ConnectionManagersFactory, server: ScriptedServer
) -> None:
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    peer = await server.wait_peer()
    server.status = 401  # fatal: the supervisor gives up on the redial
    peer.abort()
    await wait_until(lambda: server.attempts >= 2, "the redial refused")
    await asyncio.sleep(50 * MS)  # given up by now
    await timed_disconnect(ws)
    await timed_disconnect(ws)  # already disconnected: idempotent and prompt
    assert server.live == []
    await factory.close()


async def test_a_first_connect_that_fails_still_raises_its_own_error(
    factory: ConnectionManagersFactory,
) -> None:
    """Not retried by default, and not mistaken for an interrupted one."""
    ws = await factory.get_ws_manager()
    async with stall_gate() as gate:
        port = gate.port
    with pytest.raises(ConnectionFailedError):
        await ws.connect(f"ws://127.0.0.1:{port}/ws")  # nothing listens there any more
    assert ws.actor_ref is None
    await factory.close()


async def test_an_opening_stopped_after_its_asker_left_logs_no_unretrieved_error() -> None:
    """A connection actor stopped mid-handshake whose OpenSocket reply nobody awaits any
    more (its asker was cancelled between the reply and its await, as in a shutdown of many
    connections) must not log "Future exception was never retrieved"."""
    import gc

    import aiohttp

    from networkpype.actors.connection import ConnectionActor
    from networkpype.actors.delivery import DeliveryQueue
    from networkpype.protocol.messages import ConnectionSpec, OpenSocket
    from networkpype.runtime import stop_actor
    from networkpype.websocket.connection import WebSocketConnection

    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with stall_gate() as gate, aiohttp.ClientSession() as session:
            queue: DeliveryQueue[object] = DeliveryQueue(10)
            actor = ConnectionActor.start(WebSocketConnection(session), queue, None, "c1")
            spec = ConnectionSpec(url=gate.url)
            opened = await actor.ask(OpenSocket(spec=spec, start_reading=False), block=False)
            await gate.wait_held()
            await stop_actor(actor)  # cancels the handshake; nobody awaits `opened`
            assert opened.done()
            del opened
            gc.collect()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not [c for c in reported if "never retrieved" in str(c.get("message"))], reported


async def test_sends_left_in_the_outbox_at_a_disconnect_log_no_unretrieved_error(
    server: ScriptedServer,
) -> None:
    """Sends still queued when the manager disconnects fail with NotConnectedError; when
    nobody awaits them any more (a sharded manager's fire-and-forget unsubscribe, a
    collector shutting down) that must not log "Future exception was never retrieved"."""
    import gc

    from networkpype.protocol.messages import Send

    limit = RateLimit("slow", limit=1, time_interval=60.0)
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([limit], safety_margin_pct=0))
    ws = await factory.get_ws_manager()
    await ws.connect(server.url)
    actor = ws.actor_ref
    assert actor is not None
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        sends = [
            await actor.ask(
                Send(request=WebSocketJSONRequest(payload={"n": n}, throttler_limit_id="slow")),
                block=False,
            )
            for n in range(3)
        ]
        first = sends[0]
        await wait_until(first.done, "the first send goes out")
        await ws.disconnect()  # the second waits for its rate limit, the third behind it
        assert all(send.done() for send in sends)  # none awaited, and none ever will be
        del sends, first
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
        await factory.close()
    assert not [c for c in reported if "never retrieved" in str(c.get("message"))], reported
