"""The seed's single ``receive()`` snippet, completed: one message at a time.

After subscribing, the first ``receive()`` returns the server's acknowledgement and the next
one the first trade. ``--url`` (or $NETWORKPYPE_DEMO_URL) points it at a running demo server;
otherwise it starts one in-process.

    .venv/bin/python examples/receive_single.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from typing import Any

from networkpype.demo import DemoServer
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.request import WebSocketJSONRequest


def handle(data: Any) -> None:
    if "result" in data:
        print(f"ack: {data}")
    else:
        print(f"trade: {data['s']} seq={data['seq']} price={data['p']} qty={data['q']}")


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
            await ws_manager.subscribe(
                WebSocketJSONRequest(
                    payload={"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}
                )
            )
            for _ in range(2):
                response = await ws_manager.receive()
                if response:
                    handle(response.data)
            await ws_manager.disconnect()
            print(f"after disconnect, receive() returns {await ws_manager.receive()}")
        finally:
            await factory.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    asyncio.run(main(parser.parse_args().url))
