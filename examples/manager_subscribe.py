"""The seed's WebSocketManager snippet, completed: factory, throttler, subscribe, iter_messages.

Subscribes to two trade streams of the demo server and prints each event as it arrives until
every topic has delivered ``PER_TOPIC`` events, checking that each topic's ``seq`` has no
gap. ``--url`` (or $NETWORKPYPE_DEMO_URL) points it at a running demo server; otherwise it
starts one in-process.

    .venv/bin/python examples/manager_subscribe.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from networkpype.demo import DemoServer
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.request import WebSocketJSONRequest

TOPICS = ["btcusdt@trade", "ethusdt@trade"]
PER_TOPIC = 5


async def main(url: str | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            url = (await stack.enter_async_context(DemoServer(rate=20))).url

        throttler = AsyncThrottler(
            rate_limits=[RateLimit(limit_id="default", limit=10, time_interval=1.0)]
        )
        factory = ConnectionManagersFactory(throttler=throttler)
        try:
            ws_manager = await factory.get_ws_manager()
            await ws_manager.connect(url)

            # Subscribe
            await ws_manager.subscribe(
                WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": TOPICS, "id": 1})
            )

            seqs: dict[str, list[int]] = {topic: [] for topic in TOPICS}
            async with asyncio.timeout(10):  # bounded, whatever the server does
                async for message in ws_manager.iter_messages():
                    if not message:
                        continue
                    data = message.data
                    if "result" in data:
                        print(f"subscribed: {data}")
                        continue
                    seqs[data["stream"]].append(data["seq"])
                    print(f"{data['stream']} seq={data['seq']} price={data['p']} qty={data['q']}")
                    if min(len(s) for s in seqs.values()) >= PER_TOPIC:
                        break
            await ws_manager.disconnect()
        finally:
            await factory.close()

        for topic, got in seqs.items():
            complete = got == list(range(1, len(got) + 1))
            print(f"{topic}: {len(got)} events, seq 1..{len(got)} without gaps: {complete}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    asyncio.run(main(parser.parse_args().url))
