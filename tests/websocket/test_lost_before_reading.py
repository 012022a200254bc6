"""A connection lost before its reader starts is reported as lost, not as closed by us.

A send (a subscription replay, say) can be the first to find a new connection broken, before
the reader has started pumping. The reader must then report the loss, so that the supervisor
redials: a ``NotConnectedError`` means "closed by ``disconnect()``" to the reader, which then
ends quietly, and the connection would stay dead with its subscriptions."""

from __future__ import annotations

import aiohttp
import pytest

from networkpype.protocol.errors import (
    ConnectionClosedError,
    MessageTimeoutError,
    NotConnectedError,
)
from networkpype.testing.scripted import ScriptedServer
from networkpype.wire.connection import BinaryFrame, WebSocketConnection
from tests.timing import wait_until


def _offer(frame: bytes | BinaryFrame) -> bool:
    return True


async def _put(frame: bytes | BinaryFrame) -> None:
    return None


def _on_timeout(error: MessageTimeoutError) -> None:
    return None


async def test_a_send_that_finds_the_link_broken_leaves_the_loss_to_the_reader(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    peer = await server.wait_peer()
    peer.abort()  # a reset, as the venue's kill: no close frame

    async def send_fails() -> bool:
        try:
            await conn.send_frame("replayed subscription")
        except ConnectionClosedError:
            return True
        return False

    await wait_until(send_fails, "a send fails on the reset connection")
    assert not conn.connected
    with pytest.raises(ConnectionClosedError):  # lost, not NotConnectedError ("closed by us")
        await conn.pump(_offer, _put, _on_timeout)


async def test_the_reader_of_a_connection_closed_by_us_ends_quietly(
    server: ScriptedServer, session: aiohttp.ClientSession
) -> None:
    conn = WebSocketConnection(session)
    await conn.connect(server.url)
    await conn.disconnect()
    with pytest.raises(NotConnectedError):  # what the reader takes for "closed by us"
        await conn.pump(_offer, _put, _on_timeout)
