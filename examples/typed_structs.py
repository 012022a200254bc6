"""Typed messages: msgspec Structs instead of dicts, two ways.

1. ``decoder=Trade`` on the manager decodes each frame straight into a ``Trade`` (no dict is
   built; frames that are not trades, like the subscription ack, arrive as ``str``).
2. A custom ``WebSocketPostProcessor`` turns the default dicts into Structs with
   ``msgspec.convert`` (useful when a post-processor chain works on dicts first).

    .venv/bin/python examples/typed_structs.py
"""

from __future__ import annotations

import asyncio

import msgspec

from networkpype.demo import DemoServer
from networkpype.factory import ConnectionManagersFactory
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.processor.base import WebSocketPostProcessor
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.response import WebSocketResponse


class Trade(msgspec.Struct):
    """The fields of a trade event this program uses (others are skipped by msgspec)."""

    s: str
    p: str
    q: str
    seq: int


class ToTrade(WebSocketPostProcessor):
    """dict → Trade for trade events; anything else is left as it is."""

    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if isinstance(response.data, dict) and response.data.get("e") == "trade":
            response.data = msgspec.convert(response.data, Trade)
        return response


SUBSCRIBE = WebSocketJSONRequest(payload={"method": "SUBSCRIBE", "params": ["btcusdt@trade"]})


async def first_trades(
    factory: ConnectionManagersFactory, url: str, n: int, **kw: object
) -> list[Trade]:
    ws = await factory.get_ws_manager(**kw)  # type: ignore[arg-type]
    await ws.connect(url)
    await ws.subscribe(SUBSCRIBE)
    trades: list[Trade] = []
    async for message in ws.iter_messages():
        if isinstance(message.data, Trade):
            trades.append(message.data)
            if len(trades) == n:
                break
    await ws.disconnect()
    return trades


async def main() -> None:
    throttler = AsyncThrottler([RateLimit("default", 10, 1.0)])
    async with DemoServer(rate=50.0) as server:
        direct = ConnectionManagersFactory(throttler=throttler)
        for trade in await first_trades(direct, server.url, 3, decoder=Trade):
            print(f"decoder=Trade: {trade!r}")
        await direct.close()
        converted = ConnectionManagersFactory(throttler=throttler, ws_post_processors=[ToTrade()])
        for trade in await first_trades(converted, server.url, 3):
            print(f"post-processor: {type(trade).__name__} seq={trade.seq} price={trade.p}")
        await converted.close()


if __name__ == "__main__":
    asyncio.run(main())
