"""A private channel: an HMAC-signed subscription, signed afresh on every reconnection.

The venue here (a small aiohttp server inside this program, on 127.0.0.1) accepts a
``subscribe`` to the private ``orders`` channel only with a valid HMAC-SHA256 signature over
a fresh timestamp, and refuses a signature it has seen before (a replayed message). After
the first subscription it drops the connection once. The supervisor reconnects and replays
the recorded subscription through ``Auth.ws_authenticate`` again, so it carries a new
timestamp and signature and the venue accepts it.

    .venv/bin/python examples/private_channel.py
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import web

from networkpype.auth import Auth
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.events import Reconnected
from networkpype.rest.request import RESTRequest
from networkpype.throttler.rate_limit import RateLimit
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.request import WebSocketJSONRequest, WebSocketRequest
from networkpype.websocket.response import WebSocketResponse

SECRET = b"demo-secret"


def signature(timestamp: int, channel: str) -> str:
    return hmac.new(SECRET, f"{timestamp}{channel}".encode(), hashlib.sha256).hexdigest()


class HmacAuth(Auth):
    """Signs private subscriptions with a fresh millisecond timestamp."""

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        return request

    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        timestamp = time.time_ns() // 1_000_000
        request.payload["timestamp"] = timestamp
        request.payload["signature"] = signature(timestamp, request.payload["channel"])
        return request


class Venue:
    """Checks signatures, refuses replays, drops the first connection after a login."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.logins = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            payload: dict[str, Any] = json.loads(message.data)
            sig, ts = payload.get("signature", ""), payload.get("timestamp", 0)
            valid = hmac.compare_digest(sig, signature(ts, payload.get("channel", "")))
            fresh = sig not in self.seen and abs(time.time() * 1000 - ts) < 5000
            self.seen.add(sig)
            if not (valid and fresh):
                print(f"venue: rejected (valid={valid}, fresh={fresh})")
                await ws.close(code=1008, message=b"bad signature")
                break
            self.logins += 1
            print(f"venue: login {self.logins} accepted (valid signature, fresh timestamp)")
            await ws.send_json({"channel": "orders", "event": "subscribed", "n": self.logins})
            if self.logins == 1:
                await ws.close(code=1001, message=b"maintenance")
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/ws"


async def main() -> None:
    venue = Venue()
    await venue.start()
    factory = ConnectionManagersFactory(
        throttler=AsyncThrottler([RateLimit("default", 10, 1.0)]), auth=HmacAuth()
    )
    ws = await factory.get_ws_manager()
    await ws.connect(venue.url)
    private = WebSocketJSONRequest(
        payload={"op": "subscribe", "channel": "orders"}, is_auth_required=True
    )
    await ws.subscribe(private)
    async with asyncio.timeout(10):
        async for item in ws.iter_messages(events=True):
            if isinstance(item, Reconnected):
                print(f"client: reconnected after {item.downtime * 1000:.0f} ms; replaying")
            elif isinstance(item, WebSocketResponse):
                print(f"client: {item.data}")
                if item.data.get("n") == 2:
                    break
    print(f"caller's request untouched: {private.payload}")
    print(f"distinct signatures seen by the venue: {len(venue.seen)}")
    await factory.close()
    assert venue.runner is not None
    await venue.runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
