"""The card's facade: one object a host starts and stops, exposing ``ws_manager``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pykka import ActorRegistry

from networkpype import NetworkPype
from networkpype.protocol.errors import NotConnectedError
from networkpype.testing.scripted import ScriptedServer
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest


async def test_start_exposes_ws_manager_and_stop_leaves_nothing(
    echo_server: ScriptedServer,
) -> None:
    pype = NetworkPype()
    with pytest.raises(NotConnectedError):
        _ = pype.ws_manager
    actors_before = len(ActorRegistry.get_all())
    async with pype:
        ws = pype.ws_manager
        assert isinstance(ws, WebSocketManager)
        await ws.connect(echo_server.url)
        await ws.subscribe(WebSocketJSONRequest(payload={"op": "sub"}))
        response = await ws.receive()
        assert response is not None and response.data == {"op": "sub"}
        assert len(ActorRegistry.get_all()) > actors_before
    assert not pype.started and not ws.connected
    assert len(ActorRegistry.get_all()) == actors_before  # every actor stopped
    peer = await echo_server.wait_peer()
    await peer.closed.wait()


async def test_stop_stops_the_default_throttlers_actor(echo_server: ScriptedServer) -> None:
    before = len(ActorRegistry.get_all())
    async with NetworkPype() as pype:
        await pype.ws_manager.connect(echo_server.url)
        await pype.ws_manager.send(
            WebSocketJSONRequest(payload={"x": 1}, throttler_limit_id="default")
        )
        assert len(ActorRegistry.get_all()) > before
    assert len(ActorRegistry.get_all()) == before


async def test_factory_holds_a_manager_only_while_it_is_connected() -> None:
    """A program that makes, uses and drops managers for weeks leaves none in the factory;
    close() still disconnects the ones that are connected."""
    import gc
    import weakref

    from networkpype.demo.server import DemoServer
    from networkpype.factory import ConnectionManagersFactory
    from networkpype.throttler.rate_limit import RateLimit
    from networkpype.throttler.throttler import AsyncThrottler

    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("d", 100, 1.0)]))
    async with DemoServer() as server:
        dropped: list[Callable[[], object]] = []  # weak references
        for _ in range(5):
            manager = await factory.get_ws_manager()
            await manager.connect(server.url)
            await manager.disconnect()
            sharded = await factory.get_sharded_ws_manager()
            await sharded.connect(server.url)
            await sharded.disconnect()
            dropped += [weakref.ref(manager), weakref.ref(sharded)]
        del manager, sharded
        gc.collect()
        assert [ref for ref in dropped if ref() is not None] == []
        kept = await factory.get_ws_manager()
        await kept.connect(server.url)
        never_connected = await factory.get_ws_manager()
        await factory.close()
        assert not kept.connected and kept.actor_ref is None
        assert never_connected.actor_ref is None
