"""The ``networkpype`` command (also ``python -m networkpype``).

``networkpype demo``
    Starts the loopback :class:`~networkpype.demo.server.DemoServer`, runs the documented
    manager flow against it (``ConnectionManagersFactory`` with an ``AsyncThrottler``,
    ``get_ws_manager()``, ``connect``, ``subscribe``, ``iter_messages()``), prints each message
    as it arrives for ``--duration`` seconds or ``--count`` events, disconnects, closes the
    factory and prints a one-line summary. Exit status 0 only if events arrived and no gap was
    seen in any topic's sequence numbers, 1 otherwise.

``networkpype bench [options]``
    Runs ``bench/ws_throughput.py`` of a source checkout with the given options.

Invalid arguments exit with status 2 and a one-line error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]

DEFAULT_TOPICS = ("btcusdt@trade", "ethusdt@trade", "btcusdt@depth")
_MAX_DURATION = 3600.0  # seconds: the demo is a bounded run, not a service
_BENCH_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "ws_throughput.py"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (0 < value <= _MAX_DURATION and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be within (0, {_MAX_DURATION:.0f}], not {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (0 < value <= 10_000 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be within (0, 10000], not {text}")
    return value


def _topics(text: str) -> list[str]:
    topics = [t.strip() for t in text.split(",") if t.strip()]
    if not topics:
        raise argparse.ArgumentTypeError("give at least one topic")
    for topic in topics:
        symbol, _, stream = topic.partition("@")
        if not symbol.isalnum() or not (stream == "trade" or stream.startswith("depth")):
            raise argparse.ArgumentTypeError(f"{topic!r} is not <symbol>@trade or <symbol>@depth")
    return topics


def _parser() -> _ArgumentParser:
    parser = _ArgumentParser(
        prog="networkpype", description="networkpype: the demo and the benchmark."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,bench}")
    demo = commands.add_parser(
        "demo",
        help="stream from the built-in loopback server through a WebSocketManager",
        description="Subscribe to a few topics of a loopback DemoServer through the "
        "documented manager API and print what arrives.",
    )
    demo.add_argument("--duration", type=_duration, default=5.0, help="seconds to run (default 5)")
    demo.add_argument("--count", type=_positive_int, help="stop after this many stream events")
    demo.add_argument(
        "--topics",
        type=_topics,
        default=list(DEFAULT_TOPICS),
        help=f"comma-separated topics (default {','.join(DEFAULT_TOPICS)})",
    )
    demo.add_argument(
        "--rate", type=_rate, default=10.0, help="events per second per topic (default 10)"
    )
    demo.add_argument("--quiet", action="store_true", help="print only the summary")
    commands.add_parser(
        "bench",
        add_help=False,  # -h/--help goes to the benchmark script
        help="run bench/ws_throughput.py (options are passed on; try `bench --help`)",
    )
    return parser


@dataclass
class _SequenceTracker:
    """Counts events per topic and checks that each topic's ``seq`` goes 1, 2, 3, ...

    A ``seq`` of 1 starts a new subscription (e.g. one replayed after a reconnect); any other
    jump is a gap.
    """

    counts: dict[str, int] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    gaps: list[tuple[str, int, int]] = field(default_factory=list)  # (topic, expected, got)
    restarts: int = 0

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def observe(self, topic: str, seq: int) -> str | None:
        """Record one event; returns a note when the sequence did not simply continue."""
        self.counts[topic] = self.counts.get(topic, 0) + 1
        last = self.last_seq.get(topic)
        self.last_seq[topic] = seq
        if last is None or seq == last + 1:
            return None
        if seq == 1:
            self.restarts += 1
            return f"{topic}: sequence restarted (new subscription)"
        self.gaps.append((topic, last + 1, seq))
        return f"{topic}: GAP, expected seq {last + 1}, got {seq}"


def _describe(data: Any) -> tuple[str | None, int | None, str]:
    """(topic, seq, printable line) for one received message."""
    if isinstance(data, dict):
        topic, seq = data.get("stream"), data.get("seq")
        if isinstance(topic, str) and isinstance(seq, int):
            if data.get("e") == "trade":
                line = f"{topic} #{seq} {data.get('s')} price={data.get('p')} qty={data.get('q')}"
            elif data.get("e") == "depthUpdate":
                bids, asks = data.get("b") or [], data.get("a") or []
                best_bid = bids[0][0] if bids else "-"
                best_ask = asks[0][0] if asks else "-"
                line = (
                    f"{topic} #{seq} {data.get('s')} book {len(bids)}x{len(asks)} "
                    f"bid={best_bid} ask={best_ask}"
                )
            else:
                line = f"{topic} #{seq} {data}"
            return topic, seq, line
        if "result" in data or "error" in data:
            return None, None, f"reply: {data}"
    return None, None, f"message: {data!r}"


async def _run_demo(args: argparse.Namespace) -> int:
    # Imported here so that `networkpype bench` and `--help` need nothing beyond the stdlib.
    from networkpype.demo.server import DemoServer
    from networkpype.factory import ConnectionManagersFactory
    from networkpype.throttler.rate_limit import RateLimit
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.websocket.request import WebSocketJSONRequest

    tracker = _SequenceTracker()
    started = time.monotonic()

    def say(line: str) -> None:
        if not args.quiet:
            print(f"[{time.monotonic() - started:6.2f}s] {line}", flush=True)

    async with DemoServer(rate=args.rate, lifetime=args.duration + 30.0) as server:
        say(f"demo server on {server.url}")
        throttler = AsyncThrottler(
            rate_limits=[RateLimit(limit_id="default", limit=10, time_interval=1.0)]
        )
        factory = ConnectionManagersFactory(throttler=throttler)
        try:
            ws_manager = await factory.get_ws_manager()
            await ws_manager.connect(server.url)
            say(f"connected; subscribing to {', '.join(args.topics)}")
            await ws_manager.subscribe(
                WebSocketJSONRequest(
                    payload={"method": "SUBSCRIBE", "params": args.topics, "id": 1}
                )
            )
            deadline = asyncio.timeout(args.duration)
            try:
                async with deadline:
                    async for message in ws_manager.iter_messages():
                        if not message:
                            continue
                        topic, seq, line = _describe(message.data)
                        say(line)
                        if topic is not None and seq is not None:
                            note = tracker.observe(topic, seq)
                            if note is not None:
                                say(note)
                            if args.count is not None and tracker.events >= args.count:
                                break
                    else:
                        say("the connection closed")
            except TimeoutError:
                if not deadline.expired():
                    raise  # a timeout of the library's, not our --duration
            await ws_manager.disconnect()
            say("disconnected")
        finally:
            await factory.close()
    elapsed = time.monotonic() - started
    per_topic = " ".join(f"{t}={tracker.counts.get(t, 0)}" for t in args.topics)
    ok = tracker.events > 0 and not tracker.gaps
    print(
        f"summary: {tracker.events} events in {elapsed:.2f} s ({per_topic}); "
        f"gaps={len(tracker.gaps)} restarts={tracker.restarts}; {'OK' if ok else 'FAILED'}",
        flush=True,
    )
    return 0 if ok else 1


def _run_bench(argv: list[str]) -> int:
    if not _BENCH_SCRIPT.is_file():
        print(
            f"networkpype: error: {_BENCH_SCRIPT} not found (bench runs from a source checkout)",
            file=sys.stderr,
        )
        return 2
    spec = importlib.util.spec_from_file_location("networkpype_bench_ws_throughput", _BENCH_SCRIPT)
    if spec is None or spec.loader is None:
        print(f"networkpype: error: cannot load {_BENCH_SCRIPT}", file=sys.stderr)
        return 2
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return int(module.main(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``networkpype`` console script; returns the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "bench":
        return _run_bench(extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return asyncio.run(_run_demo(args))
    except KeyboardInterrupt:
        return 130
    except (OSError, ConnectionError, TimeoutError) as exc:
        print(f"networkpype: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
