"""A host that runs its own pykka actors supervises networkpype as a child subsystem.

The host is a ``pykka.ThreadingActor``. From its own thread it starts the subsystem through
the blocking ``SyncNetworkPype`` facade, passing ``parent=`` its own ref, and reads trades from
the demo server. Then it points the subsystem at a venue that revokes the API key: the venue
closes the session (1001, going away) and answers the reconnection with HTTP 403. 403 is fatal,
so our supervisor gives up at once, and the host is told twice: its actor receives
``ChildGaveUp``, and its reader gets ``GaveUpError`` after the data received before. The host
then stops the subsystem from its thread. ``--url`` (or $NETWORKPYPE_DEMO_URL) points it at a
running demo server; otherwise it starts one in-process.

    .venv/bin/python examples/embed_pykka_host.py
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import pykka
from aiohttp import web

from networkpype.actors import LoopThread
from networkpype.demo import DemoServerThread
from networkpype.embedding import SyncNetworkPype
from networkpype.protocol.errors import GaveUpError
from networkpype.protocol.messages import ChildGaveUp
from networkpype.websocket.request import WebSocketJSONRequest

TRADES = 10


class RevokingVenue:
    """A loopback venue that accepts sessions until ``revoke()``: then it closes them with
    1001 and refuses every later handshake with HTTP 403 (the API key was revoked)."""

    def __init__(self) -> None:
        self.revoked = False
        self._sessions: list[web.WebSocketResponse] = []
        self._thread = LoopThread(name="revoking-venue")
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.revoked:
            return web.Response(status=403, text="API key revoked\n")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sessions.append(ws)
        async for _message in ws:
            pass
        return ws

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/ws"

    async def _revoke(self) -> None:
        self.revoked = True
        for ws in self._sessions:
            await ws.close(code=1001, message=b"key revoked")

    def start(self) -> None:
        self._thread.start()
        self._thread.run_coroutine(self._start()).result(5.0)

    def revoke(self) -> None:
        self._thread.run_coroutine(self._revoke()).result(5.0)

    def stop(self) -> None:
        if self._runner is not None:
            self._thread.run_coroutine(self._runner.cleanup()).result(5.0)
        self._thread.shutdown(2.0)


class Host(pykka.ThreadingActor):
    """The host program's supervisor: owns our subsystem and hears when it gives up."""

    def __init__(self) -> None:
        super().__init__()
        self.pype: SyncNetworkPype | None = None
        self.told: ChildGaveUp | None = None

    def on_receive(self, message: Any) -> Any:
        match message:
            case ChildGaveUp(child_id=child_id, reason=reason):
                # Sent by our supervisor, from the networkpype loop thread, to this inbox.
                self.told = message
                print(f"host told: ChildGaveUp child={child_id} reason={reason}")
            case ("start", str(url), list(topics)):
                self._start(url, topics)
            case ("read", int(count)):
                return self._read(count)
            case "read until the end":
                self._read_to_the_end()
            case "was told":
                return self.told is not None
            case "stop":
                self._stop_subsystem()
        return None

    def on_stop(self) -> None:
        self._stop_subsystem()

    def _start(self, url: str, topics: list[str]) -> None:
        self._stop_subsystem()  # a host points the subsystem elsewhere by replacing it
        here = threading.current_thread().name
        self.pype = SyncNetworkPype(parent=self.actor_ref, call_timeout=5.0)
        self.pype.connect(url)
        if topics:
            payload = {"method": "SUBSCRIBE", "params": topics, "id": 1}
            self.pype.subscribe(WebSocketJSONRequest(payload=payload))
        loop = self.pype.loop_thread.name
        print(f"host: subsystem started from thread {here} (its actors run on {loop})")

    def _read(self, count: int) -> str:
        assert self.pype is not None
        seqs: list[int] = []
        while len(seqs) < count:
            data = self.pype.get(timeout=5.0).data
            if "seq" in data:
                seqs.append(data["seq"])
        return f"{len(seqs)} trades, seq {seqs[0]}..{seqs[-1]}"

    def _read_to_the_end(self) -> None:
        assert self.pype is not None
        try:
            while self.pype.get(timeout=5.0) is not None:
                pass
        except GaveUpError as error:
            print(f"host reader: GaveUpError: {error}")
        else:
            print("host reader: the stream ended without an error")

    def _stop_subsystem(self) -> None:
        pype, self.pype = self.pype, None
        if pype is not None:
            started = time.monotonic()
            pype.stop(timeout=5.0)
            print(f"host: subsystem stopped in {time.monotonic() - started:.2f} s")


def main(url: str | None) -> None:
    demo = None
    if url is None:
        demo = DemoServerThread(rate=50)
        demo.start()
        url = demo.url
    venue = RevokingVenue()
    venue.start()
    host = Host.start()
    try:
        host.ask(("start", url, ["btcusdt@trade"]), timeout=10.0)
        print(f"host read: {host.ask(('read', TRADES), timeout=10.0)}")

        host.ask(("start", venue.url, []), timeout=10.0)
        print("host: pointed the subsystem at a venue that will refuse reconnection with 403")
        # The host reads first: its inbox then holds ChildGaveUp behind this request.
        reading = host.ask("read until the end", block=False)
        print(
            "venue: revokes the key: closes the session with 1001, refuses reconnections with 403"
        )
        venue.revoke()
        reading.get(timeout=10.0)
        print(f"host was told by its child: {host.ask('was told', timeout=10.0)}")
        host.ask("stop", timeout=10.0)
    finally:
        host.stop(timeout=10.0)
        venue.stop()
        if demo is not None:
            demo.stop()
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(
        f"clean shutdown: actors left: {len(pykka.ActorRegistry.get_all())}, "
        f"threads left: {left} (the library's loop thread, kept for reuse)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    main(parser.parse_args().url)
