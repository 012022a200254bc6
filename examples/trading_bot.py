"""A trading-bot style consumer: per-topic state, resynced on every gap.

It subscribes 50 trade topics on the bundled exchange simulator through the sharded,
supervised manager (10 topics per connection), keeps the last sequence number and price per
topic, and treats the stream's gap events as the signal to resync: after a ``Disconnected``
of a connection, the topics it carried are marked stale, and the next message of a stale
topic is where the bot would re-fetch a snapshot. Midway, the simulator kills every
connection and refuses new ones for 0.3 s (HTTP 429 with Retry-After: the supervisor cools
off, reconnects and replays the subscriptions).

    .venv/bin/python examples/trading_bot.py
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from networkpype.demo import ExchangeSimulator
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.events import Disconnected, Reconnected
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.response import WebSocketResponse


@dataclass
class TopicState:
    seq: int = 0
    price: float = 0.0
    stale: bool = False
    resyncs: int = 0


async def main() -> None:
    topics = [f"sym{i:02d}usdt@trade" for i in range(50)]
    state = {topic: TopicState() for topic in topics}
    unexplained_gaps = 0
    async with ExchangeSimulator(rate=20.0) as venue:
        factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("d", 10, 1.0)]))
        ws = await factory.get_sharded_ws_manager(
            max_topics_per_connection=10,
            min_send_interval=0.2,  # the venue's own 5 frames a second: the margin is ours
        )  # supervision at its defaults: what a bot that runs for weeks uses
        await ws.connect(venue.url)
        result = await ws.subscribe_topics(topics)
        print(f"subscribed {len(result.accepted)} topics over {ws.connections} connections")
        killed_at, deadline = time.monotonic() + 1.0, time.monotonic() + 4.0
        killed = False
        async for item in ws.iter_messages(events=True):
            if isinstance(item, Disconnected):
                for topic in topics:
                    if ws.shard_of(topic) == item.connection_id:
                        state[topic].stale = True
            elif isinstance(item, Reconnected):
                print(f"{item.connection_id} back after {item.downtime * 1000:.0f} ms")
            elif isinstance(item, WebSocketResponse) and isinstance(item.data, dict):
                topic, seq = item.data["stream"], item.data["seq"]
                s = state[topic]
                if s.seq and seq != s.seq + 1:
                    if s.stale:
                        s.resyncs += 1  # a real bot re-fetches a snapshot here
                    else:
                        unexplained_gaps += 1
                s.seq, s.price, s.stale = seq, float(item.data["p"]), False
            if not killed and time.monotonic() >= killed_at:
                killed = True
                venue.refuse_for(0.3)  # and answers 429 for a while: every topic misses events
                print(f"venue kills {venue.kill_all()} connections")
            if time.monotonic() >= deadline:
                break
        await factory.close()
    resyncs = sum(s.resyncs for s in state.values())
    print(f"topics with data: {sum(1 for s in state.values() if s.seq)}/{len(topics)}")
    print(f"resyncs after gaps: {resyncs}, gaps without an event: {unexplained_gaps}")
    print(f"state consistent: {unexplained_gaps == 0 and resyncs > 0}")


if __name__ == "__main__":
    asyncio.run(main())
