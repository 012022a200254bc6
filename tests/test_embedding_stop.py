"""``SyncNetworkPype.stop()`` and the sharded manager's ``disconnect()`` are prompt while a
handshake hangs (issue 9, item 2), against a gate that accepts and never answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from yarl import URL

from networkpype.actors import LoopThread
from networkpype.demo.exchange import ExchangeSimulator
from networkpype.embedding import SyncNetworkPype
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ConnectAbortedError
from networkpype.testing.scripted import ScriptedServer
from networkpype.testing.stall import StallGate, stall_gate
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.sharded import ShardedWebSocketManager

pytestmark = pytest.mark.timeout(60)

PROMPT = 1.0  # seconds; the promise is 100 ms (bench/stop_latency.py measures it)
QUICK = 5.0


class Servers:
    """A ScriptedServer and a StallGate in front of it, on a loop thread of their own."""

    def __init__(self) -> None:
        self.loop_thread = LoopThread(name="test-stall-servers")
        self.server = ScriptedServer()
        self.gate: StallGate | None = None

    def run(self, make: Callable[[], Any]) -> Any:
        async def call() -> Any:
            result = make()
            return (await result) if asyncio.iscoroutine(result) else result

        return self.loop_thread.run_coroutine(call()).result(QUICK)

    def wait_held(self) -> None:
        assert self.gate is not None
        self.run(self.gate.wait_held)

    def all_closed(self) -> None:
        assert self.gate is not None
        self.run(lambda: self.gate.wait_all_closed(PROMPT))  # type: ignore[union-attr]


@pytest.fixture
def servers() -> Iterator[Servers]:
    servers = Servers()
    servers.loop_thread.start()
    servers.run(servers.server.start)
    servers.gate = StallGate(servers.server.port)
    servers.run(servers.gate.start)
    yield servers
    servers.run(servers.gate.stop)
    servers.run(servers.server.stop)
    servers.loop_thread.shutdown(QUICK)


def timed_stop(pype: SyncNetworkPype) -> float:
    started = time.monotonic()
    pype.stop(timeout=QUICK)
    elapsed = time.monotonic() - started
    assert elapsed < PROMPT, f"stop() took {elapsed:.3f} s"
    return elapsed


def test_sync_stop_during_the_first_stalled_handshake(servers: Servers) -> None:
    assert servers.gate is not None
    servers.gate.silent = True
    pype = SyncNetworkPype()
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            pype.connect(servers.gate.url)  # type: ignore[union-attr]
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    connecting = threading.Thread(target=connect)
    connecting.start()
    servers.wait_held()
    timed_stop(pype)
    servers.all_closed()
    connecting.join(QUICK)
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectAbortedError)


def test_sync_stop_mid_redial_with_a_stalled_handshake(servers: Servers) -> None:
    assert servers.gate is not None
    pype = SyncNetworkPype()
    pype.connect(servers.gate.url)
    servers.run(servers.server.wait_peer)
    servers.gate.silent = True
    assert servers.run(servers.gate.drop) == 1
    servers.wait_held()
    timed_stop(pype)
    servers.all_closed()


async def sharded_disconnect(ws: ShardedWebSocketManager, gate: StallGate) -> None:
    started = time.monotonic()
    await ws.disconnect()
    elapsed = time.monotonic() - started
    assert elapsed < PROMPT, f"disconnect() took {elapsed:.3f} s"
    await gate.wait_all_closed(PROMPT)


@pytest.mark.parametrize("state", ["opening", "redialing"])
async def test_sharded_disconnect_while_a_shard_handshake_hangs(state: str) -> None:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("x", 100, 1.0)]))
    async with ExchangeSimulator(rate=20.0) as sim:
        venue = URL(sim.url)
        assert venue.port is not None
        async with stall_gate(target_port=venue.port) as gate:
            ws = await factory.get_sharded_ws_manager(max_topics_per_connection=1)
            await ws.connect(str(venue.with_port(gate.port)))
            await ws.subscribe_topics(["aaausdt@trade"])
            gate.silent = True  # every later handshake hangs
            if state == "opening":  # a second shard, opening
                hanging = asyncio.create_task(ws.subscribe_topics(["bbbusdt@trade"]))
                await gate.wait_held()
                await sharded_disconnect(ws, gate)
                with pytest.raises(ConnectionError):
                    await hanging
            else:  # the first shard's redial
                assert gate.drop() == 1
                await gate.wait_held()
                await sharded_disconnect(ws, gate)
    await factory.close()
