"""The seed's "Sending Messages" snippet, completed: a JSON request that needs authentication
and a plain-text one.

The factory gets a small HMAC-SHA256 ``Auth``; only the request with ``is_auth_required=True``
is signed. The demo server echoes the JSON message (so the signature can be checked here) and
answers the text ``PING`` with ``PONG``. ``--url`` (or $NETWORKPYPE_DEMO_URL) points it at a
running demo server; otherwise it starts one in-process.

    .venv/bin/python examples/send_messages.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import os
from typing import Any

from networkpype.auth import Auth
from networkpype.demo import DemoServer
from networkpype.factory import ConnectionManagersFactory
from networkpype.rest.request import RESTRequest
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.request import (
    WebSocketJSONRequest,
    WebSocketPlainTextRequest,
    WebSocketRequest,
)

API_KEY = "demo-key"
API_SECRET = "demo-secret"


def sign(payload: dict[str, Any], secret: str) -> str:
    """HMAC-SHA256 over ``k=v&...`` of the payload's fields in key order, signature excluded."""
    text = "&".join(f"{k}={v}" for k, v in sorted(payload.items()) if k != "signature")
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class HmacAuth(Auth):
    """Adds ``apiKey``, a fresh millisecond ``timestamp`` and its ``signature`` to JSON
    WebSocket messages; REST requests are left alone in this example."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        super().__init__()
        self._api_key = api_key
        self._api_secret = api_secret

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        return request

    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        if isinstance(request.payload, dict):  # the pipeline's own copy: safe to change
            request.payload["apiKey"] = self._api_key
            request.payload["timestamp"] = int(self.time_provider.time() * 1000)
            request.payload["signature"] = sign(request.payload, self._api_secret)
        return request


async def main(url: str | None) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            url = (await stack.enter_async_context(DemoServer())).url

        factory = ConnectionManagersFactory(
            throttler=AsyncThrottler(
                rate_limits=[RateLimit(limit_id="default", limit=10, time_interval=1.0)]
            ),
            auth=HmacAuth(API_KEY, API_SECRET),
        )
        try:
            ws_manager = await factory.get_ws_manager()
            await ws_manager.connect(url)

            # JSON message
            json_req = WebSocketJSONRequest(
                payload={"type": "subscribe", "channel": "orderbook"},
                is_auth_required=True,
            )
            # Plain text message (e.g., ping protocols)
            text_req = WebSocketPlainTextRequest(payload="PING")

            await ws_manager.send(json_req)
            await ws_manager.send(text_req)

            replies = []
            async with asyncio.timeout(5):
                async for message in ws_manager.iter_messages():
                    replies.append(message.data)
                    if len(replies) == 2:
                        break
            await ws_manager.disconnect()
        finally:
            await factory.close()

    echoed, pong = replies
    print(f"json echo: type={echoed['type']} channel={echoed['channel']}")
    print(f"signed with apiKey={echoed['apiKey']} timestamp={echoed['timestamp']}")
    valid = hmac.compare_digest(echoed["signature"], sign(echoed, API_SECRET))
    print(f"signature valid: {valid}")
    print(f"caller's payload untouched: {json_req.payload}")
    print(f"text reply: {pong}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    asyncio.run(main(parser.parse_args().url))
