"""What an idle supervised connection holds (issue 12, item 7): no task. The runtime serves
an actor's inbox with a task only while messages wait, and with the hook on aiohttp's parser
an idle reader parks (``WebSocketConnection.pump``'s ``wake``), so a ``WebSocketManager``
that is connected, subscribed and idle holds no task where it held five (a task per actor:
manager, supervisor, connection, and the reader); the loop runs one, the actors' keeper, for
all of them. Without the hook the reader's task stays. ``bench/idle_memory.py`` measures the
bytes."""

from __future__ import annotations

import asyncio

import pytest

from networkpype.factory import ConnectionManagersFactory
from networkpype.testing.scripted import ScriptedServer
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.request import WebSocketJSONRequest, WebSocketPlainTextRequest

CONNECTIONS = 5
SETTLE = 5.0  # seconds: the bound for the actors' tasks to end once the inboxes are empty


def _names(tasks: set[asyncio.Task[object]]) -> list[str]:
    """Named tasks (the library names its own; the test server's are aiohttp's, unnamed)."""
    names = (task.get_name() for task in tasks)
    return sorted(name.rstrip("0123456789") for name in names if not name.startswith("Task-"))


async def _settled(before: set[asyncio.Task[object]], expected: list[str]) -> list[str]:
    """The names of the tasks started since ``before`` (numbers cut), once they are
    ``expected`` or ``SETTLE`` passed."""
    current = asyncio.current_task()
    try:
        async with asyncio.timeout(SETTLE):
            while _names(asyncio.all_tasks() - before - {current}) != expected:
                await asyncio.sleep(0.01)
    except TimeoutError:
        pass
    return _names(asyncio.all_tasks() - before - {current})


@pytest.mark.parametrize("hooked", [True, False], ids=["hook", "no-hook"])
async def test_an_idle_subscribed_manager_holds_no_task_but_a_reader_without_the_hook(
    echo_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, hooked: bool
) -> None:
    monkeypatch.setattr(WebSocketConnection, "hook_allowed", hooked)
    before = asyncio.all_tasks()
    factory = ConnectionManagersFactory(
        throttler=AsyncThrottler(rate_limits=[RateLimit("default", 1000, 1.0)])
    )
    managers: list[WebSocketManager] = []
    try:
        for i in range(CONNECTIONS):
            manager = await factory.get_ws_manager()
            await manager.connect(echo_server.url)
            await manager.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "id": i}))
            managers.append(manager)
        for i, manager in enumerate(managers):
            echoed = await asyncio.wait_for(manager.receive(), SETTLE)
            assert echoed is not None and echoed.data == {"method": "SUBSCRIBE", "id": i}

        assert [m.connection.hooked for m in managers] == [hooked] * CONNECTIONS
        readers = 0 if hooked else CONNECTIONS  # parked with the hook
        idle = ["AsyncioActor-keeper"] + ["networkpype-reader-ws"] * readers
        assert await _settled(before, idle) == idle

        # Idle actors wake for the next message: a send goes out, its echo comes back.
        for i, manager in enumerate(managers):
            await manager.send(WebSocketPlainTextRequest(payload=f"after idle {i}"))
        for i, manager in enumerate(managers):
            echoed = await asyncio.wait_for(manager.receive(), SETTLE)
            assert echoed is not None and echoed.data == f"after idle {i}"
        assert [len(await m.subscriptions()) for m in managers] == [1] * CONNECTIONS
        assert await _settled(before, idle) == idle
    finally:
        await factory.close()
    # Disconnected: nothing is left, the keeper included.
    assert await _settled(before, []) == []
