"""The market-data bus end to end: venue -> collector -> JetStream -> consumer, beside one
process reading the venue directly, in the same run.

The venue is the exchange simulator in a subprocess; nats-server is a real one (JetStream,
file store, a temporary directory); the collector is a ``networkpype collect`` process; the
bus consumer and the direct reader are this process. Each is measured ``--reps`` times, as
direct, bus, direct, bus, ...; medians are printed.

(1) Throughput: ``--topics`` topics at a rate well above what one reader takes, each feed
    bounded to ``--messages`` / topics events. Direct: ``get_sharded_ws_manager()`` and
    ``iter_messages()`` (JSON decoded), messages per second from the first to the last.
    Bus: the collector publishes, ``BusConsumer.iter_messages()`` (JSON decoded) reads;
    messages per second at the consumer from the first to the last.
(2) Latency at a fixed rate (``--latency-rate`` messages a second in all, ``--seconds``
    long): direct, receipt minus the venue's event time ``E`` (milliseconds, so both carry
    the same +0..1 ms truncation); bus, the same end to end, and the latency the bus adds,
    receipt minus the collector's ``Np-Received`` stamp (nanoseconds; one host's clock).

    .venv/bin/python bench/bus_throughput.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from _common import ArgumentParser, positive_int, server_process

SERVER_START_TIMEOUT = 20.0
RUN_TIMEOUT = 120.0  # seconds for one measurement


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _serve(rate: float, messages: int) -> None:
    from networkpype.demo.exchange import ExchangeSimulator

    async with ExchangeSimulator(
        rate=rate, max_messages=messages, lifetime=600.0, max_send_buffer=1 << 30
    ) as venue:
        print(f"venue listening on ws://127.0.0.1:{venue.port}/ws", flush=True)
        await asyncio.sleep(600.0)


@contextlib.contextmanager
def _venue(rate: float, messages: int) -> Iterator[str]:
    argv = [sys.executable, __file__, "--serve", "--rate", str(rate), "--messages", str(messages)]
    with server_process(argv, SERVER_START_TIMEOUT) as (url, _pid):
        yield url


async def _direct(url: str, topics: list[str], total: int, stamp: bool) -> list[float]:
    """Receipt times (monotonic) of every message, or latencies (ms) with ``stamp``."""
    from networkpype.factory import ConnectionManagersFactory
    from networkpype.throttler.rate_limit import RateLimit
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.websocket.response import WebSocketResponse

    factory = ConnectionManagersFactory(throttler=AsyncThrottler([RateLimit("default", 10, 1.0)]))
    out: list[float] = []
    try:
        manager = await factory.get_sharded_ws_manager(max_topics_per_connection=200)
        await manager.connect(url)
        await manager.subscribe_topics(topics)
        async with asyncio.timeout(RUN_TIMEOUT):
            async for item in manager.iter_messages():
                if isinstance(item, WebSocketResponse):
                    if stamp:
                        out.append(time.time() * 1000 - item.data["E"])
                    else:
                        out.append(time.monotonic())
                    if len(out) == total:
                        break
    finally:
        await factory.close()
    return out


def _collector(url: str, nats_url: str, topics_file: Path, rep: int, stamp: bool) -> list[str]:
    argv = [
        sys.executable, "-m", "networkpype", "collect", url, "--topics", f"@{topics_file}",
        "--nats", nats_url, "--stream", f"BENCH{rep}", "--prefix", f"b{rep}",
        "--partitions", "1", "--lease-ttl", "1", "--settle", "0", "--status-interval", "60",
    ]  # fmt: skip
    return [*argv, "--stamp"] if stamp else argv


def _bus(
    url: str, nats_url: str, topics_file: Path, rep: int, total: int, stamp: bool
) -> tuple[list[float], list[float]]:
    """Receipt times (monotonic), or (end-to-end ms, added ms) with ``stamp``."""
    argv = _collector(url, nats_url, topics_file, rep, stamp)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        return asyncio.run(_consume(nats_url, rep, total, stamp))
    finally:
        proc.terminate()
        proc.wait(15)


async def _consume(
    nats_url: str, rep: int, total: int, stamp: bool
) -> tuple[list[float], list[float]]:
    from networkpype.bus import BusConsumer, StreamSettings

    consumer = BusConsumer(
        "sim", nats_urls=(nats_url,), stream=StreamSettings(name=f"BENCH{rep}", prefix=f"b{rep}")
    )
    first: list[float] = []
    second: list[float] = []
    try:
        await consumer.connect()
        async with _reporting(first, total), asyncio.timeout(RUN_TIMEOUT):
            async for item in consumer.iter_messages():
                if stamp:
                    first.append(time.time() * 1000 - item.data["E"])
                    second.append((time.time_ns() - item.received_ns) / 1e6)
                else:
                    first.append(time.monotonic())
                if len(first) == total:
                    break
    finally:
        await consumer.disconnect()
    return first, second


@contextlib.asynccontextmanager
async def _reporting(got: list[float], total: int) -> AsyncIterator[None]:
    try:
        yield
    except TimeoutError:
        raise RuntimeError(f"only {len(got)} of {total} messages in {RUN_TIMEOUT:g} s") from None


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / max(times[-1] - times[0], 1e-9)


def main() -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--topics", type=positive_int, default=20, help="default 20")
    parser.add_argument(
        "--messages", type=positive_int, default=60_000, help="per throughput run (default 60000)"
    )
    parser.add_argument(
        "--reps", type=positive_int, default=5, help="default 5 (medians of at least 5)"
    )
    parser.add_argument(
        "--latency-rate", type=positive_int, default=1000, help="messages/s in all (default 1000)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per latency run (default 5)")
    parser.add_argument("--only", choices=("throughput", "latency"), help="one part only")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.rate, args.messages))
        return

    from networkpype.bus.server import LocalNatsServer
    from networkpype.cli.demo_plan import demo_topics

    topics = demo_topics(args.topics)
    with tempfile.TemporaryDirectory() as tmp, LocalNatsServer(store_dir=Path(tmp) / "n") as nats:
        topics_file = Path(tmp) / "topics.txt"
        topics_file.write_text("\n".join(topics) + "\n")
        reps = itertools.count()
        if args.only != "latency":
            _throughput(args, topics, nats.url, topics_file, reps)
        if args.only != "throughput":
            _latency(args, topics, nats.url, topics_file, reps)


def _throughput(
    args: argparse.Namespace,
    topics: list[str],
    nats_url: str,
    topics_file: Path,
    reps: Iterator[int],
) -> None:
    per_topic = args.messages // args.topics
    total = per_topic * args.topics
    offered = 200_000 / args.topics  # far above one reader: the pipeline sets the pace
    direct: list[float] = []
    bus: list[float] = []
    for _ in range(args.reps):
        with _venue(offered, per_topic) as url:
            direct.append(_rate(asyncio.run(_direct(url, topics, total, False))))
        with _venue(offered, per_topic) as url:
            bus.append(_rate(_bus(url, nats_url, topics_file, next(reps), total, False)[0]))
        print(f"  rep: direct {direct[-1]:,.0f}/s, bus {bus[-1]:,.0f}/s", flush=True)
    d, b = statistics.median(direct), statistics.median(bus)
    print(
        f"throughput ({args.topics} topics, {total} messages, median of {args.reps}): "
        f"direct {d:,.0f} msg/s, bus end to end {b:,.0f} msg/s, ratio {b / d:.2f}",
        flush=True,
    )


def _latency(
    args: argparse.Namespace,
    topics: list[str],
    nats_url: str,
    topics_file: Path,
    reps: Iterator[int],
) -> None:
    rate = args.latency_rate / args.topics
    count = int(args.latency_rate * args.seconds)
    per_topic = count // args.topics + 10
    rows: dict[str, list[tuple[float, float]]] = {"direct": [], "bus": [], "added": []}
    for _ in range(args.reps):
        with _venue(rate, per_topic) as url:
            lat = asyncio.run(_direct(url, topics, count, True))
        rows["direct"].append((_percentile(lat, 0.5), _percentile(lat, 0.99)))
        with _venue(rate, per_topic) as url:
            e2e, added = _bus(url, nats_url, topics_file, next(reps), count, True)
        rows["bus"].append((_percentile(e2e, 0.5), _percentile(e2e, 0.99)))
        rows["added"].append((_percentile(added, 0.5), _percentile(added, 0.99)))
    print(
        f"latency at {args.latency_rate} msg/s ({args.topics} topics, {args.seconds:g} s, "
        f"median of {args.reps}), p50 / p99 in ms:"
    )
    for name, label in (
        ("direct", "direct (venue E to receipt, ms grain)"),
        ("bus", "bus end to end (venue E to receipt, ms grain)"),
        ("added", "added by the bus (collector stamp to receipt)"),
    ):
        p50 = statistics.median(r[0] for r in rows[name])
        p99 = statistics.median(r[1] for r in rows[name])
        print(f"  {label:48s} {p50:7.2f} / {p99:7.2f}", flush=True)

if __name__ == "__main__":
    main()
