"""``networkpype collect URL``: a collector process of the market-data bus
(:class:`networkpype.bus.Collector`).

It takes partition leases of ``--topics`` in the NATS KV bucket of ``--venue``, keeps the
topics of its partitions alive through the sharded manager and publishes them to JetStream.
Run the same command (same ``--topics``, ``--partitions``, ``--replicas``, ``--lease-ttl``)
on as many hosts as you like; each takes a share.

stdout carries one JSON line when the collector is ready (``{"ready": ID}``) and a status
line every ``--status-interval`` seconds (slots held, messages, publisher counters);
library logs go to stderr (``-v`` for INFO).

Exit status: 0 after SIGTERM or ``--duration`` (slots handed back, buffer flushed), 130
after Ctrl-C (the same clean stop), 1 when NATS cannot be reached within
``--connect-deadline`` seconds, 2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import msgspec

from networkpype.cli import _args
from networkpype.cli.demo_plan import demo_topics
from networkpype.protocol.errors import NetworkPypeError

__all__ = ["add_nats_arguments", "add_parser", "nats_url", "run", "topic_list"]


def topic_list(text: str) -> list[str]:
    """A type: a count of the demo venue's topics, ``@FILE`` (one topic a line) or a
    comma-separated list."""
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= 100_000:
            raise argparse.ArgumentTypeError(f"must be within 1..100000 topics, not {text}")
        return demo_topics(count)
    if text.startswith("@"):
        try:
            lines = Path(text[1:]).read_text().splitlines()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]!r}: {exc}") from None
        topics = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    else:
        topics = [t.strip() for t in text.split(",") if t.strip()]
    if not topics:
        raise argparse.ArgumentTypeError("give a number of topics, @FILE or a list")
    return list(dict.fromkeys(topics))


def _name(text: str) -> str:
    from networkpype.bus.records import check_name

    try:
        return check_name("name", text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def nats_url(text: str) -> str:
    """A type: a ``nats://`` (or ``tls://``) URL with a host."""
    from urllib.parse import urlsplit

    from networkpype.protocol.redaction import redact_url

    parts = urlsplit(text)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{redact_url(text)!r} is not a NATS URL: use nats://host:port"
        )
    return text


def add_nats_arguments(parser: argparse.ArgumentParser) -> None:
    """The options a collector and a consumer share."""
    parser.add_argument(
        "--nats",
        action="append",
        type=nats_url,
        default=None,
        metavar="URL",
        help="a NATS server (nats://host:port); repeatable (default nats://127.0.0.1:4222)",
    )
    parser.add_argument(
        "--venue", type=_name, default="sim", help="the venue's name on the bus (default sim)"
    )
    parser.add_argument(
        "--stream", type=_name, default="NP_MD", help="the JetStream stream (default NP_MD)"
    )
    parser.add_argument(
        "--prefix", type=_name, default="md", help="the subjects' first token (default md)"
    )
    parser.add_argument(
        "--stream-replicas",
        type=_args.positive_int,
        default=1,
        help="replicas of the stream and of the lease bucket, if this process creates them "
        "(3 in a 3-node NATS cluster; default 1)",
    )
    parser.add_argument(
        "--connect-deadline",
        type=_args.seconds(),
        default=30.0,
        help="seconds to reach NATS at start before exiting with status 1 (default 30)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="INFO logs on stderr")


def add_parser(commands: Any) -> None:
    """Add ``collect`` to the ``networkpype`` sub-commands."""
    parser = commands.add_parser(
        "collect",
        help="a collector of the market-data bus: a share of the topics, published to NATS",
        description="Take partition leases of the topics in NATS, keep them alive through "
        "the sharded manager and publish every message (and every gap) to JetStream. "
        "Exit status: 0 after SIGTERM/--duration, 130 after Ctrl-C, 1 if NATS is "
        "unreachable, 2 for bad arguments.",
    )
    parser.add_argument("url", type=_args.ws_url, metavar="URL", help="the venue's ws:// URL")
    parser.add_argument(
        "--topics",
        type=topic_list,
        required=True,
        metavar="N|@FILE|LIST",
        help="every topic of the deployment (the same on every collector)",
    )
    parser.add_argument("--id", type=_name, help="this collector's id (default host-pid)")
    parser.add_argument(
        "--partitions", type=_args.positive_int, default=16, help="default 16"
    )
    parser.add_argument(
        "--replicas",
        type=_args.positive_int,
        default=1,
        help="collectors per partition; 2 is a hot standby (default 1)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=_args.seconds(1.0, 3600.0, low_inclusive=True),
        default=3.0,
        help="seconds a dead collector's partitions stay unserved at most (default 3)",
    )
    parser.add_argument(
        "--settle",
        type=_args.non_negative_seconds,
        help="seconds to wait, registered, before taking partitions (default lease-ttl/3)",
    )
    parser.add_argument(
        "--topics-per-connection", type=_args.positive_int, default=200, help="default 200"
    )
    parser.add_argument(
        "--min-send-interval",
        type=_args.seconds(),
        default=0.2,
        help="the venue's least seconds between two frames of a connection, pings and pongs "
        "included (default 0.2: Binance's 5 a second; the library keeps a margin)",
    )
    parser.add_argument(
        "--max-buffer",
        type=_args.positive_int,
        default=100_000,
        help="messages kept while NATS is unreachable; older ones are dropped and reported",
    )
    parser.add_argument(
        "--max-in-flight", type=_args.positive_int, default=1000, help="default 1000"
    )
    parser.add_argument(
        "--stamp", action="store_true", help="add the Np-Received header (for latency)"
    )
    parser.add_argument(
        "--status-interval",
        type=_args.seconds(),
        default=1.0,
        help="seconds between two status lines on stdout (default 1)",
    )
    parser.add_argument("--duration", type=_args.seconds(), help="stop after this many seconds")
    add_nats_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Collect as the command line asked; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(_collect(args))


def _settings(args: argparse.Namespace) -> Any:
    from networkpype.bus import CollectorSettings, LeaseSettings, PublishSettings, StreamSettings

    extra: dict[str, Any] = {"collector_id": args.id} if args.id else {}
    return CollectorSettings(
        venue=args.venue,
        url=args.url,
        topics=tuple(args.topics),
        nats_urls=tuple(args.nats or ["nats://127.0.0.1:4222"]),
        stream=StreamSettings(
            name=args.stream, prefix=args.prefix, replicas=args.stream_replicas
        ),
        leases=LeaseSettings(
            partitions=args.partitions,
            replicas=args.replicas,
            ttl=args.lease_ttl,
            settle=args.settle,
        ),
        publish=PublishSettings(max_buffer=args.max_buffer, max_in_flight=args.max_in_flight),
        connect_deadline=args.connect_deadline,
        stamp_received=args.stamp,
        manager_options={
            "max_topics_per_connection": args.topics_per_connection,
            "min_send_interval": args.min_send_interval,
            "max_connection_attempts": (300, 300.0),  # Binance: per 5 minutes per IP
        },
        **extra,
    )


async def _collect(args: argparse.Namespace) -> int:
    from networkpype.bus import Collector

    encode = msgspec.json.Encoder().encode
    try:
        collector = Collector(_settings(args))
    except NetworkPypeError as exc:
        print(f"networkpype collect: {exc}", file=sys.stderr, flush=True)
        return 2
    loop = asyncio.get_running_loop()
    interrupted = False

    def stop(sigint: bool) -> None:
        nonlocal interrupted
        interrupted = interrupted or sigint
        collector.stop()

    loop.add_signal_handler(signal.SIGINT, stop, True)
    loop.add_signal_handler(signal.SIGTERM, stop, False)

    async def report() -> None:
        await collector.ready.wait()
        sys.stdout.buffer.write(encode({"ready": collector.settings.collector_id}) + b"\n")
        sys.stdout.flush()
        while True:
            await asyncio.sleep(args.status_interval)
            stats = collector.statistics()
            status = asdict(stats)
            status["leases"]["held"] = [list(s) for s in stats.leases.held]
            sys.stdout.buffer.write(encode(status) + b"\n")
            sys.stdout.flush()

    reporter = loop.create_task(report())
    if args.duration is not None:
        loop.call_later(args.duration, collector.stop)
    try:
        await collector.run()
    except NetworkPypeError as exc:
        print(f"networkpype collect: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
    return 130 if interrupted else 0
