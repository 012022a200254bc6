"""The cluster demo's venue in a process of its own (``python -m
networkpype.cli._cluster_venue RATE``): the exchange simulator, so that its feeds do not
share an interpreter with the demo's audit.

Prints ``venue listening on URL`` once it accepts handshakes; on SIGTERM it stops and prints
its statistics as one JSON line (``{"violations": N, "connections_accepted": N,
"violation_details": [...]}``).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import msgspec

from networkpype.demo.exchange import ExchangeSimulator

__all__ = ["main"]


async def _serve(rate: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with ExchangeSimulator(rate=rate, lifetime=3600.0) as venue:
        print(f"venue listening on ws://127.0.0.1:{venue.port}/ws", flush=True)
        await stop.wait()
        stats = venue.statistics()
    violations = [
        f"connection {c.connection_id}: {v.messages_in_window} frames within {v.window:g} s "
        f"(limit {v.limit}), the last a {v.frame_type}, {v.age:.1f} s after its handshake"
        for c in stats.connections
        if (v := c.violation) is not None
    ]
    line = {
        "violations": stats.violations,
        "connections_accepted": stats.connections_accepted,
        "violation_details": violations[:5],
    }
    print(msgspec.json.encode(line).decode(), flush=True)


def main() -> None:
    """Serve at the rate (events a second per topic) given as the only argument."""
    asyncio.run(_serve(float(sys.argv[1])))


if __name__ == "__main__":
    main()
