"""The seed's connection-health snippet, completed: ``last_recv_time`` and ``ping()``.

Receives a few trades, unsubscribes so that the connection falls silent, and once it has been
idle longer than ``IDLE_LIMIT`` sends a WebSocket ping, as the seed's keep-alive logic does
(with 0.5 s instead of 30 s to stay short). Then an application-level ``PING`` text gets a
``PONG``, which moves ``last_recv_time`` forward. ``--url`` (or $NETWORKPYPE_DEMO_URL) points
it at a running demo server; otherwise it starts one in-process.

    .venv/bin/python examples/connection_health.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time

from networkpype.demo import DemoServer
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.request import WebSocketJSONRequest, WebSocketPlainTextRequest

IDLE_LIMIT = 0.5  # seconds; the seed uses 30


async def main(url: str | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            url = (await stack.enter_async_context(DemoServer(rate=20))).url

        factory = ConnectionManagersFactory(
            throttler=AsyncThrottler(
                rate_limits=[RateLimit(limit_id="default", limit=10, time_interval=1.0)]
            )
        )
        try:
            ws_manager = await factory.get_ws_manager()
            await ws_manager.connect(url, message_timeout=5.0)
            topic = {"params": ["btcusdt@trade"]}
            await ws_manager.subscribe(
                WebSocketJSONRequest(payload={"method": "SUBSCRIBE", **topic, "id": 1})
            )
            trades = 0
            while trades < 3:
                response = await ws_manager.receive()
                if response and response.data.get("e") == "trade":
                    trades += 1
            age = time.time() - ws_manager.last_recv_time
            print(f"received {trades} trades; last data frame {age:.2f} s ago")

            await ws_manager.send(
                WebSocketJSONRequest(payload={"method": "UNSUBSCRIBE", **topic, "id": 2})
            )
            while (response := await ws_manager.receive()) and response.data != {
                "result": None,
                "id": 2,
            }:
                pass  # trades already on their way before the unsubscribe
            print("unsubscribed: the connection is now silent")

            await asyncio.sleep(IDLE_LIMIT + 0.1)
            idle = time.time() - ws_manager.last_recv_time
            if idle > IDLE_LIMIT:
                await ws_manager.ping()
                print(f"idle for {idle:.2f} s (> {IDLE_LIMIT} s): sent a ping")

            before = ws_manager.last_recv_time
            await ws_manager.send(WebSocketPlainTextRequest(payload="PING"))
            response = await ws_manager.receive()
            reply = response.data if response else None
            print(f"application-level PING answered: {reply}")
            print(f"last_recv_time advanced: {ws_manager.last_recv_time > before}")
            await ws_manager.disconnect()
        finally:
            await factory.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    asyncio.run(main(parser.parse_args().url))
