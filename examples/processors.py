"""The seed's pre- and post-processors, registered on the factory, both shown taking effect.

``AddTimestampProcessor`` adds ``"timestamp": 1234567890`` to every outgoing JSON message;
``FilterHeartbeats`` blanks incoming ``{"type": "ping"}`` messages (``data = None``) so the
application skips them. The demo server echoes JSON it does not know, so the echoes show
both: the hello comes back stamped, the heartbeats come back filtered. ``--url`` (or
$NETWORKPYPE_DEMO_URL) points it at a running demo server; otherwise it starts one.

    .venv/bin/python examples/processors.py
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
from networkpype.websocket.processor.base import WebSocketPostProcessor, WebSocketPreProcessor
from networkpype.websocket.request import WebSocketJSONRequest, WebSocketRequest
from networkpype.websocket.response import WebSocketResponse


class AddTimestampProcessor(WebSocketPreProcessor):
    async def pre_process(self, request: WebSocketRequest) -> WebSocketRequest:
        if isinstance(request.payload, dict):
            request.payload["timestamp"] = 1234567890
        return request


class FilterHeartbeats(WebSocketPostProcessor):
    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse:
        if isinstance(response.data, dict) and response.data.get("type") == "ping":
            response.data = None  # signal to application to ignore
        return response


async def main(url: str | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            url = (await stack.enter_async_context(DemoServer())).url

        throttler = AsyncThrottler(
            rate_limits=[RateLimit(limit_id="default", limit=10, time_interval=1.0)]
        )
        factory = ConnectionManagersFactory(
            throttler=throttler,
            ws_pre_processors=[AddTimestampProcessor()],
            ws_post_processors=[FilterHeartbeats()],
        )
        try:
            ws_manager = await factory.get_ws_manager()
            await ws_manager.connect(url)
            outgoing = [{"type": "hello"}, {"type": "ping"}, {"type": "ping"}, {"type": "bye"}]
            for payload in outgoing:
                await ws_manager.send(WebSocketJSONRequest(payload=payload))

            seen = filtered = 0
            async with asyncio.timeout(5):
                async for message in ws_manager.iter_messages():
                    seen += 1
                    if message.data is None:
                        filtered += 1
                    else:
                        print(f"echo: {message.data}")
                    if seen == len(outgoing):
                        break
            await ws_manager.disconnect()
        finally:
            await factory.close()
        print(f"heartbeats filtered: {filtered}")
        print(f"caller's payloads untouched: {outgoing[0]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    asyncio.run(main(parser.parse_args().url))
