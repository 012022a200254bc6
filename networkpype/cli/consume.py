"""``networkpype consume``: read a venue's messages from the market-data bus
(:class:`networkpype.bus.BusConsumer`), one JSON line each.

``--format full`` (default) writes ``{"topic", "seq", "data"}`` per message;
``--format audit`` writes ``{"topic", "seq", "t", "r"}`` (``t``: Unix time of receipt,
``r``: redelivered after a crash), enough to check a run for loss and duplicates. With
``--events`` the records (``Disconnected``, ``PartitionAcquired``, ``SequenceGap``, ...) are
written too, each tagged ``"event"``, in order with the data. ``--durable NAME`` resumes
where the last consumer of that name stopped. Output goes to stdout or ``--output FILE``
(appended).

Exit status: 0 after ``--count``, ``--duration`` or SIGTERM (what was written is
acknowledged), 130 after Ctrl-C, 1 when NATS cannot be reached, 2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from typing import Any, BinaryIO

import msgspec

from networkpype.cli import _args
from networkpype.cli.collect import add_nats_arguments
from networkpype.protocol.errors import NetworkPypeError

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add ``consume`` to the ``networkpype`` sub-commands."""
    parser = commands.add_parser(
        "consume",
        help="read a venue's messages from the market-data bus, one JSON line each",
        description="Read from NATS JetStream what the collectors published, with the "
        "records of every gap in order. Exit status: 0 at --count/--duration/SIGTERM, "
        "130 after Ctrl-C, 1 if NATS is unreachable, 2 for bad arguments.",
    )
    parser.add_argument("--durable", help="durable consumer name: resume where it stopped")
    parser.add_argument("--topic", help="one topic only (its own consumer)")
    parser.add_argument("--events", action="store_true", help="write the records too")
    parser.add_argument("--format", choices=("full", "audit"), default="full")
    parser.add_argument("--output", metavar="FILE", help="append to FILE instead of stdout")
    parser.add_argument(
        "--count", type=_args.positive_int, help="stop after this many messages"
    )
    parser.add_argument("--duration", type=_args.seconds(), help="stop after this many seconds")
    add_nats_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Consume as the command line asked; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.output:
        with open(args.output, "ab") as out:
            return asyncio.run(_consume(args, out))
    return asyncio.run(_consume(args, sys.stdout.buffer))


async def _consume(args: argparse.Namespace, out: BinaryIO) -> int:
    from networkpype.bus import BusConsumer, BusResponse, StreamSettings

    encode = msgspec.json.Encoder().encode
    try:
        consumer = BusConsumer(
            args.venue,
            nats_urls=tuple(args.nats or ["nats://127.0.0.1:4222"]),
            durable=args.durable,
            stream=StreamSettings(
                name=args.stream, prefix=args.prefix, replicas=args.stream_replicas
            ),
            connect_deadline=args.connect_deadline,
            decoder="raw" if args.format == "audit" else None,
        )
    except NetworkPypeError as exc:
        print(f"networkpype consume: {exc}", file=sys.stderr, flush=True)
        return 2
    loop = asyncio.get_running_loop()
    deadline = asyncio.timeout(args.duration)
    interrupted = False

    def stop(sigint: bool) -> None:
        nonlocal interrupted
        interrupted = interrupted or sigint
        deadline.reschedule(loop.time())

    loop.add_signal_handler(signal.SIGINT, stop, True)
    loop.add_signal_handler(signal.SIGTERM, stop, False)
    audit = args.format == "audit"
    count = 0
    try:
        async with deadline:
            await consumer.connect()
            items = (
                consumer.stream(args.topic)
                if args.topic
                else consumer.iter_messages(events=args.events)
            )
            async for item in items:
                if isinstance(item, BusResponse):
                    if audit:
                        line = {"topic": item.topic, "seq": item.seq, "t": time.time()}
                        if item.redelivered:
                            line["r"] = 1
                        if item.received_ns is not None:
                            line["rx"] = item.received_ns
                        out.write(encode(line) + b"\n")
                    else:
                        out.write(
                            encode({"topic": item.topic, "seq": item.seq, "data": item.data})
                            + b"\n"
                        )
                    out.flush()  # written before it is acknowledged (at the next fetch)
                    count += 1
                    if args.count is not None and count >= args.count:
                        break
                elif args.events or args.topic:
                    out.write(encode(item)[:-1] + b',"t":' + repr(time.time()).encode() + b"}\n")
                    out.flush()
    except TimeoutError:
        if not deadline.expired():
            raise
    except NetworkPypeError as exc:
        print(f"networkpype consume: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        out.flush()
        await consumer.disconnect()
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    return 130 if interrupted else 0
