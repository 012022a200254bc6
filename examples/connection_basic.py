"""The seed's WebSocketConnection snippet, completed: the raw connection, no manager.

Connects to the demo server, subscribes to one trade stream, prints what arrives and
disconnects. ``--url`` (or $NETWORKPYPE_DEMO_URL) points it at a running demo server;
otherwise it starts one in-process.

    .venv/bin/python examples/connection_basic.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

import aiohttp

from networkpype.demo import DemoServer
from networkpype.websocket.connection import WebSocketConnection
from networkpype.websocket.request import WebSocketJSONRequest

MESSAGES = 5  # the ack and four trades


async def main(url: str | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            url = (await stack.enter_async_context(DemoServer(rate=20))).url

        async with aiohttp.ClientSession() as session:
            conn = WebSocketConnection(aiohttp_client_session=session)
            await conn.connect(
                ws_url=url,
                ping_timeout=10,
                message_timeout=5.0,  # the seed says 30.0; an example should fail sooner
            )
            await conn.send(
                WebSocketJSONRequest(
                    payload={"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}
                )
            )
            received = 0
            while conn.connected and received < MESSAGES:
                response = await conn.receive()
                if response:
                    print("received:", response.data)
                    received += 1
            await conn.disconnect()
            print(f"disconnected: connected={conn.connected}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    asyncio.run(main(parser.parse_args().url))
