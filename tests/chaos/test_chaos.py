"""Fault injection: a supervised manager behind a loopback FaultProxy.

Each schedule is seeded; the seed is in every assertion message so a failure can be replayed.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import random
import statistics
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.events import Disconnected, Reconnected
from networkpype.supervisor.policy import BackoffPolicy, RestartPolicy
from networkpype.testing import FaultProxy
from networkpype.testing.scripted import Peer, ScriptedServer, scripted_server
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.response import WebSocketResponse
from tests.timing import MS, wait_until

# Restart at once after every reset (healthy_after=0) and never give up: these tests count
# recoveries, not escalations.
RESILIENT = RestartPolicy(
    backoff=BackoffPolicy(initial=0.005, cap=0.05, healthy_after=0.0),
    max_restarts=None,
    within=1.0,
)


Rig = tuple[ScriptedServer, FaultProxy, ConnectionManagersFactory]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    seed = int(os.environ.get("NETWORKPYPE_CHAOS_SEED", random.randrange(2**32)))
    async with scripted_server() as server, FaultProxy(target_port=server.port, seed=seed) as proxy:
        factory = ConnectionManagersFactory(
            throttler=AsyncThrottler([RateLimit("default", 1000, 1.0)])
        )
        yield server, proxy, factory
        await factory.close()


async def supervised(
    factory: ConnectionManagersFactory, policy: RestartPolicy = RESILIENT, **kw: Any
) -> WebSocketManager:
    base = await factory.get_ws_manager(**kw)
    return WebSocketManager(base.connection, throttler=factory.throttler, restart_policy=policy)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def reset_and_recover(
    server: ScriptedServer, proxy: FaultProxy, index: int, subs: int
) -> tuple[float, list[str]]:
    """Reset every connection; wait until peer ``index`` has the replayed subscriptions.
    Returns the recovery time (reset → last replayed frame at the server) and the frames."""
    started = time.monotonic()
    proxy.reset_all()
    peer = await server.wait_peer(index)
    await peer.wait_frames(subs)
    return peer.received[subs - 1][0] - started, peer.texts()


async def test_a_thousand_resets_lose_and_duplicate_nothing(rig: Rig) -> None:
    server, proxy, factory = rig
    ws = await supervised(factory)
    await ws.connect(proxy.url_for("/ws"))
    names = [f"topic{i}@trade" for i in range(10)]
    for name in names:
        await ws.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": [name]}))
    await (await server.wait_peer(0)).wait_frames(10)
    expected = [
        json.dumps({"method": "SUBSCRIBE", "params": [n]}, separators=(",", ":")) for n in names
    ]

    recoveries: list[float] = []
    for i in range(1, 1001):
        took, frames = await reset_and_recover(server, proxy, i, 10)
        assert frames == expected, f"seed={proxy.seed}: reconnection {i} replayed {frames}"
        recoveries.append(took)
        server.peers[i - 1] = None  # type: ignore[call-overload]  # let the old peer go
    await asyncio.sleep(20 * MS)  # a late duplicate's chance to arrive
    assert all(len(p.received) == 10 for p in server.peers[-1:])  # no late duplicates
    p99 = statistics.quantiles(recoveries, n=100)[98]
    print(
        "\nrecovery reset→10 subscriptions replayed: "
        f"median {statistics.median(recoveries) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert p99 <= 0.050, f"seed={proxy.seed}: recovery p99 {p99 * 1000:.1f} ms > 50 ms"
    await ws.disconnect()


async def test_reconnects_leak_no_fds_tasks_or_memory(rig: Rig) -> None:
    server, proxy, factory = rig
    # The test server's own records must not grow with the reconnections either.
    server.retain_peers = False
    server.attempt_times = collections.deque(maxlen=8)
    ws = await supervised(factory)
    await ws.connect(proxy.url_for("/ws"))
    await ws.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": ["x"]}))
    await (await server.wait_peer(0)).wait_frames(1)

    async def consume() -> None:  # a consumer reads the gap events, as a real one would
        async for _ in ws.iter_messages(events=True):
            pass

    consumer = asyncio.create_task(consume())

    async def cycles(n: int) -> None:
        for _ in range(n):
            before = server.attempts
            proxy.reset_all()
            await wait_until(  # awaited within the iteration: `before` is this one's
                lambda: server.attempts > before and server.live and server.live[-1].received,  # noqa: B023
                "reconnected and replayed",
            )

    # Tracing starts before the warm-up so that both snapshots hold one live connection's
    # worth of objects: only growth across reconnections is measured.
    tracemalloc.start()
    await cycles(50)  # warm-up: caches, pools, lazily built objects
    await asyncio.sleep(50 * MS)  # the last cycle's closing tasks end
    gc.collect()
    fds0, tasks0 = fds(), len(asyncio.all_tasks())
    mem0 = tracemalloc.get_traced_memory()[0]
    await cycles(1000)
    await asyncio.sleep(50 * MS)
    gc.collect()
    mem1 = tracemalloc.get_traced_memory()[0]
    if os.environ.get("NETWORKPYPE_LEAK_DEBUG"):
        for stat in tracemalloc.take_snapshot().statistics("filename")[:8]:
            print(stat)
    tracemalloc.stop()
    fds1, tasks1 = fds(), len(asyncio.all_tasks())
    print(
        f"\nafter 1000 reconnects: fds {fds0}->{fds1}, tasks {tasks0}->{tasks1}, "
        f"traced memory +{(mem1 - mem0) / 1024:.1f} KiB"
    )
    assert fds1 == fds0, f"seed={proxy.seed}"
    assert tasks1 == tasks0, f"seed={proxy.seed}"
    assert mem1 - mem0 <= 64 * 1024, f"seed={proxy.seed}: grew {(mem1 - mem0) / 1024:.1f} KiB"
    await ws.disconnect()
    await asyncio.wait_for(consumer, 1)


async def test_half_open_detected_within_interval_plus_timeout(rig: Rig) -> None:
    server, proxy, factory = rig
    interval, timeout = 0.2, 0.2
    ws = await supervised(factory)
    await ws.connect(proxy.url_for("/ws"), ping_interval=interval, pong_timeout=timeout)
    assert isinstance(await ws.receive(events=True), object)  # Connected
    peer = await server.wait_peer(0)
    await peer.ws.send_str("last")
    assert (await ws.receive()).data == "last"  # type: ignore[union-attr]
    proxy.blackhole(True)
    started = time.monotonic()
    event = await asyncio.wait_for(ws.receive(events=True), 5)
    detected = time.monotonic() - started
    proxy.blackhole(False)
    assert isinstance(event, Disconnected) and "half-open" in event.cause
    print(
        f"\nhalf-open detected after {detected * 1000:.0f} ms "
        f"(bound {(interval + timeout + 0.1) * 1000:.0f} ms)"
    )
    assert detected <= interval + timeout + 0.1, f"seed={proxy.seed}"
    assert isinstance(await asyncio.wait_for(ws.receive(events=True), 5), Reconnected)
    await ws.disconnect()


async def test_no_false_alarm_with_200ms_latency_each_way(rig: Any) -> None:
    # aiohttp's heartbeat would wait interval/2 = 0.3 s for a pong that needs 0.4 s.
    server, proxy, factory = rig
    proxy.latency(0.2)
    ws = await supervised(factory)
    await ws.connect(proxy.url_for("/ws"), ping_interval=0.6, pong_timeout=0.6)
    deadline = time.monotonic() + 10.0  # the 10 s; checked as it goes, to fail fast
    while time.monotonic() < deadline:
        await asyncio.sleep(500 * MS)
        assert server.attempts == 1, f"seed={proxy.seed}: {server.attempts - 1} reconnects"
    assert ws.connected
    await ws.disconnect()


async def test_no_false_alarm_when_the_consumer_stops_reading(rig: Rig) -> None:
    server, proxy, factory = rig
    interval = 100 * MS
    ws = await supervised(factory, max_queue=5)
    await ws.connect(proxy.url_for("/ws"), ping_interval=interval, pong_timeout=interval)
    peer = await server.wait_peer(0)

    async def flood() -> None:
        for i in range(100_000):
            await peer.ws.send_str(str(i))
            if i % 64 == 0:
                await asyncio.sleep(0)  # an unbuffered send never yields by itself

    flooding = asyncio.create_task(flood())
    await asyncio.sleep(3 * interval)  # the consumer does not read: the queue is full
    time.sleep(3 * interval)  # and then blocks the whole loop
    received = [m.data for m in [await ws.receive() for _ in range(50)]]  # type: ignore[union-attr]
    flooding.cancel()
    await asyncio.gather(flooding, return_exceptions=True)
    assert received == list(range(50))
    assert server.attempts == 1, f"{server.attempts - 1} reconnects"
    await ws.disconnect()


async def test_order_preserved_across_six_drops(rig: Rig) -> None:
    server, proxy, factory = rig
    rng = random.Random(proxy.seed)
    counter = iter(range(10**9))
    streams: list[asyncio.Task[None]] = []

    async def stream(peer: Peer) -> None:
        async def run() -> None:
            while not peer.ws.closed:
                await peer.ws.send_str(str(next(counter)))
                await asyncio.sleep(0.0005)

        streams.append(asyncio.create_task(run()))

    server.on_peer = stream
    ws = await supervised(factory)
    await ws.connect(proxy.url_for("/ws"))
    drops = 0
    drop_after = [rng.randint(20, 60) for _ in range(6)]  # messages per segment before a drop
    segments: list[list[int]] = [[]]
    async for item in ws.iter_messages(events=True):
        if isinstance(item, Disconnected):
            segments.append([])
        elif isinstance(item, WebSocketResponse):
            segments[-1].append(item.data)
            if drops < 6 and len(segments) == drops + 1 and len(segments[-1]) == drop_after[drops]:
                drops += 1
                proxy.reset_all()
            if drops == 6 and len(segments) == 7 and len(segments[-1]) >= 20:
                break
    for task in streams:
        task.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    flat = [n for seg in segments for n in seg]
    assert len(segments) == 7, f"seed={proxy.seed}"
    assert flat == sorted(flat) and len(set(flat)) == len(flat), f"seed={proxy.seed}"
    for seg in segments:  # within one connection nothing is lost
        assert seg == list(range(seg[0], seg[0] + len(seg))), f"seed={proxy.seed}"
    await ws.disconnect()
