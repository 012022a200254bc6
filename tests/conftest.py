from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from networkpype.testing.scripted import ScriptedServer, scripted_server


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with scripted_server() as s:
        yield s


@pytest.fixture
async def echo_server() -> AsyncIterator[ScriptedServer]:
    async with scripted_server(echo=True) as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
