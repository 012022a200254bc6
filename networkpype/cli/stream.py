"""``networkpype stream URL``: a supervised subscription to a real endpoint, one JSON line per
message on stdout.

* ``--subscribe JSON`` (repeatable) sends a raw subscription request, recorded and replayed
  after every reconnection, through a ``WebSocketManager``; every frame the venue sends,
  replies included, is printed.
* ``--topic NAME`` (repeatable) subscribes topics through the ``ShardedWebSocketManager``
  with a topic codec (``--codec binance``): batched, acknowledged, spread over connections;
  acknowledgements are taken out of the stream, rejected topics are reported on stderr.
  ``--subscribe`` requests then go to the same manager.

stdout carries the data, one compact JSON document per line (text that is not JSON as a
JSON string). stderr carries lifecycle events (``Disconnected``, ``Reconnected``, ...) as
JSON lines tagged ``"event"``, and errors as ``networkpype stream: ...`` lines.

Exit status: 0 after ``--count`` messages, ``--duration`` or the server ending the stream;
130 after Ctrl-C (SIGINT; what arrived is all printed and the connections are closed within a
second); 1 when the endpoint cannot be reached, refuses, or the supervisor gave up; 2 for
invalid arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any, BinaryIO

import msgspec

from networkpype.cli import _args
from networkpype.factory import ConnectionManagersFactory
from networkpype.limits.rate_limit import RateLimit
from networkpype.protocol.errors import NetworkPypeError
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.codec import BinanceCodec
from networkpype.websocket.manager import WebSocketManager
from networkpype.websocket.sharded import ShardedWebSocketManager
from networkpype.wire.connection import DEFAULT_MAX_MSG_SIZE
from networkpype.wire.request import WebSocketJSONRequest
from networkpype.wire.response import WebSocketResponse

__all__ = ["add_parser", "run"]

SHUTDOWN_DEADLINE = 0.7  # seconds for the closing handshakes after Ctrl-C; then sockets drop
CODECS = {"binance": BinanceCodec}


def add_parser(commands: Any) -> None:
    """Add ``stream`` to the ``networkpype`` sub-commands."""
    parser = commands.add_parser(
        "stream",
        help="subscribe to a WebSocket endpoint and print each message as a JSON line",
        description="Stream from a WebSocket endpoint through the supervised manager: "
        "reconnects with backoff and replays the subscriptions. Data goes to stdout as JSON "
        "lines, lifecycle events to stderr. Exit status: 0 at --count/--duration, 130 after "
        "Ctrl-C, 1 if the endpoint fails, 2 for bad arguments.",
    )
    parser.add_argument("url", type=_args.ws_url, metavar="URL", help="ws:// or wss:// endpoint")
    parser.add_argument(
        "--subscribe",
        type=_args.json_object,
        action="append",
        default=[],
        metavar="JSON",
        help="a subscription request (a JSON object), replayed on reconnect; repeatable",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME",
        help="a topic to subscribe through the sharded manager and --codec; repeatable",
    )
    parser.add_argument(
        "--codec",
        choices=sorted(CODECS),
        default="binance",
        help="how --topic subscriptions are written (default binance)",
    )
    parser.add_argument(
        "--topics-per-connection",
        type=_args.positive_int,
        default=200,
        help="cap of --topic subscriptions per connection (default 200; Binance allows 1024)",
    )
    parser.add_argument(
        "--header",
        type=_args.header,
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="an HTTP header of the opening handshake; repeatable",
    )
    parser.add_argument(
        "--ping-interval",
        type=_args.non_negative_seconds,
        default=10.0,
        help="send a ping after this many seconds without a frame; 0: never (default 10)",
    )
    parser.add_argument(
        "--pong-timeout",
        type=_args.seconds(),
        default=10.0,
        help="seconds to wait for an answer to a ping before reconnecting (default 10)",
    )
    parser.add_argument(
        "--max-msg-size",
        type=_args.positive_int,
        default=DEFAULT_MAX_MSG_SIZE,
        metavar="BYTES",
        help=f"largest message accepted (default {DEFAULT_MAX_MSG_SIZE})",
    )
    parser.add_argument(
        "--compress",
        type=_window_bits,
        nargs="?",
        const=15,
        default=0,
        metavar="BITS",
        help="offer permessage-deflate, with window bits 9-15 (default when given: 15); "
        "the server decides. Off by default",
    )
    parser.add_argument(
        "--no-verify-ssl", action="store_true", help="do not verify the TLS certificate"
    )
    parser.add_argument(
        "--count", type=_args.positive_int, help="stop after this many data messages"
    )
    parser.add_argument("--duration", type=_args.seconds(), help="stop after this many seconds")
    parser.set_defaults(run=run)


def _window_bits(text: str) -> int:
    try:
        bits = int(text)
    except ValueError:
        bits = 0
    if not 9 <= bits <= 15:
        raise argparse.ArgumentTypeError(f"window bits are 9-15, not {text!r}")
    return bits


def run(args: argparse.Namespace) -> int:
    """Stream as the command line asked; returns the exit status."""
    return asyncio.run(_stream(args, sys.stdout.buffer, sys.stderr.buffer))


async def _stream(args: argparse.Namespace, out: BinaryIO, err: BinaryIO) -> int:
    encode = msgspec.json.Encoder().encode
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 10, 1.0)]))
    loop = asyncio.get_running_loop()
    deadline = asyncio.timeout(args.duration)
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        deadline.reschedule(loop.time())

    loop.add_signal_handler(signal.SIGINT, interrupt)
    try:
        async with deadline:
            manager = await _subscribed_manager(factory, args, err)
            count = 0
            async for item in manager.iter_messages(events=True):
                if isinstance(item, WebSocketResponse):
                    out.write(encode(item.data) + b"\n")
                    out.flush()
                    count += 1
                    if args.count is not None and count >= args.count:
                        break
                else:
                    err.write(encode(item) + b"\n")
                    err.flush()
    except TimeoutError:
        if not deadline.expired():
            raise
    except BrokenPipeError:  # `networkpype stream ... | head`: the reader is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except (NetworkPypeError, OSError) as exc:
        print(f"networkpype stream: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        await _close(factory)
    return 130 if interrupted else 0


async def _subscribed_manager(
    factory: ConnectionManagersFactory, args: argparse.Namespace, err: BinaryIO
) -> WebSocketManager | ShardedWebSocketManager:
    """Connect and subscribe: the sharded manager for ``--topic``, a plain one otherwise."""
    connect_options: dict[str, Any] = {
        "ws_headers": dict(args.header) or None,
        "verify_ssl": not args.no_verify_ssl,
        "ping_interval": args.ping_interval,
        "pong_timeout": args.pong_timeout,
        "compress": args.compress,
    }
    requests = [WebSocketJSONRequest(payload=payload) for payload in args.subscribe]
    if not args.topic:
        plain = await factory.get_ws_manager(max_msg_size=args.max_msg_size)
        await plain.connect(args.url, **connect_options)
        for request in requests:
            await plain.subscribe(request)
        return plain
    sharded = await factory.get_sharded_ws_manager(
        codec=CODECS[args.codec](),
        max_topics_per_connection=args.topics_per_connection,
        min_send_interval=0.2,  # Binance: 5 frames a second per connection, pongs included
        max_msg_size=args.max_msg_size,
    )
    await sharded.connect(args.url, **connect_options)
    for request in requests:
        await sharded.subscribe(request)
    result = await sharded.subscribe_topics(args.topic)
    for topic, reason in result.rejected.items():
        err.write(msgspec.json.encode({"rejected": topic, "reason": reason}) + b"\n")
    err.flush()
    return sharded


async def _close(factory: ConnectionManagersFactory) -> None:
    """Close every connection with a closing handshake when the server answers within
    ``SHUTDOWN_DEADLINE``; the session's close then drops whatever is left."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SHUTDOWN_DEADLINE):
            await factory.close()
    await factory.close()  # idempotent: closes the session if the deadline cut the first
