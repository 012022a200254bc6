"""networkpype in a plain synchronous program: two threads, no event loop of its own.

A control thread subscribes to two trade streams of the demo server and later unsubscribes one;
a reader thread counts the messages as they arrive. ``SyncNetworkPype`` runs the supervised
WebSocket on a loop thread of its own (``own_loop_thread=True``), so after ``stop()`` nothing
of networkpype is left: no actor, no task, no thread. ``--url`` (or $NETWORKPYPE_DEMO_URL)
points it at a running demo server; otherwise it starts one in-process.

    .venv/bin/python examples/embed_sync.py
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import threading
import time

import pykka

from networkpype.demo import DemoServerThread
from networkpype.embedding import SyncNetworkPype
from networkpype.websocket.request import WebSocketJSONRequest

UNSUBSCRIBE_ID = 3


def request(method: str, topic: str, request_id: int) -> WebSocketJSONRequest:
    return WebSocketJSONRequest(payload={"method": method, "params": [topic], "id": request_id})


def control(pype: SyncNetworkPype) -> None:
    """Subscribe, wait, unsubscribe: blocking calls, each bounded by a timeout."""
    btc = request("SUBSCRIBE", "btcusdt@trade", 1)
    pype.subscribe(btc, timeout=5.0)
    print("control: subscribed btcusdt@trade")
    pype.subscribe(request("SUBSCRIBE", "ethusdt@trade", 2), timeout=5.0)
    print("control: subscribed ethusdt@trade")
    time.sleep(0.5)
    # Forget the recorded subscription (no replay after a reconnect) and tell the server.
    pype.unsubscribe(btc, request("UNSUBSCRIBE", "btcusdt@trade", UNSUBSCRIBE_ID), timeout=5.0)
    print("control: unsubscribed btcusdt@trade")
    time.sleep(0.5)


def reader(pype: SyncNetworkPype, counts: collections.Counter[str]) -> None:
    """Read until stop() ends the stream (get() returns None, which ends messages())."""
    unsubscribed = False
    for message in pype.messages(timeout=5.0):
        data = message.data
        if "result" in data:
            counts["acks"] += 1
            unsubscribed |= data["id"] == UNSUBSCRIBE_ID
        else:
            counts[data["stream"]] += 1
            if unsubscribed and data["stream"] == "btcusdt@trade":
                counts["late"] += 1


def main(url: str | None) -> None:
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(DemoServerThread(rate=50)).url
        before = set(threading.enumerate())

        pype = SyncNetworkPype(own_loop_thread=True, call_timeout=5.0)
        stack.callback(pype.stop)  # idempotent: a no-op after the stop() below
        pype.start()
        pype.connect(url)
        print(f"connected: {pype.connected}")

        counts: collections.Counter[str] = collections.Counter()
        threads = [
            threading.Thread(target=control, args=(pype,), name="control"),
            threading.Thread(target=reader, args=(pype, counts), name="reader"),
        ]
        for thread in threads:
            thread.start()
        threads[0].join(10.0)

        started = time.monotonic()
        pype.stop(timeout=5.0)
        took = time.monotonic() - started
        threads[1].join(5.0)

        print(
            f"reader: acks={counts['acks']} btcusdt@trade={counts['btcusdt@trade']} "
            f"ethusdt@trade={counts['ethusdt@trade']}"
        )
        print(f"btcusdt@trade after its unsubscribe: {counts['late']}")
        left = [t.name for t in set(threading.enumerate()) - before]
        actors = pykka.ActorRegistry.get_all()
        print(
            f"clean shutdown: stop() took {took:.2f} s, reader ended: {not threads[1].is_alive()}, "
            f"threads left: {len(left)}, actors left: {len(actors)}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NETWORKPYPE_DEMO_URL"))
    main(parser.parse_args().url)
