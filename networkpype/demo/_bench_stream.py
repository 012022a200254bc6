"""The demo server's ``/stream`` benchmark sender: pre-encoded frames, a batch per transport
write, as fast as the client reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from networkpype.demo._demo_connection import DemoConnection
from networkpype.demo.frames import frame_header
from networkpype.demo.market import StreamKind, SyntheticMarket

__all__ = ["send_stream", "stream_templates"]

_TEMPLATES = 256  # distinct pre-encoded bodies that /stream cycles through
_BATCH = 64  # /stream frames per transport write
_HIGH_WATER = 1 << 20  # bytes buffered for a /stream client before the server waits
_DRAIN_POLL = 0.0005  # seconds between checks of a full /stream write buffer

_encode = msgspec.json.Encoder().encode


def stream_templates(kind: StreamKind) -> list[bytes]:
    """Pre-encoded bodies, each missing only its closing ``"seq":N}``."""
    market = SyntheticMarket("BENCHUSDT")
    templates = []
    for _ in range(_TEMPLATES):
        event = market.trade() if kind == "trade" else market.depth()
        event["stream"] = f"benchusdt@{'trade' if kind == 'trade' else 'depth'}"
        templates.append(_encode(event)[:-1] + b',"seq":')
    return templates


async def send_stream(
    conn: DemoConnection,
    transport: asyncio.Transport,
    templates: Sequence[bytes],
    count: int,
) -> None:
    """Write ``count`` text frames (``seq`` 1..count) to ``transport``, counting them in
    ``conn.sent``; raises ``ConnectionResetError`` when the client goes away."""
    sent = 0
    while sent < count:
        # Frames go straight to the transport, a batch per write: one write per frame
        # (a syscall each) would make the server, not the client, the bottleneck.
        upto = min(sent + _BATCH, count)
        batch = []
        for seq in range(sent + 1, upto + 1):
            body = b"%b%d}" % (templates[seq % len(templates)], seq)
            batch.append(frame_header(len(body)) + body)
        sent = upto
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(b"".join(batch))
        conn.sent += len(batch)
        await asyncio.sleep(0)
        while transport.get_write_buffer_size() > _HIGH_WATER:
            if transport.is_closing():
                raise ConnectionResetError("the client went away")
            await asyncio.sleep(_DRAIN_POLL)
