"""The demo server's ``/stream`` benchmark sender: pre-encoded frames, a batch per transport
write, as fast as the client reads them.

When the client negotiated permessage-deflate (RFC 7692), frames are compressed without a
deflate call per message, so that the server stays cheaper than the client it measures:
each template is deflated once, on its own (a sender need not refer to earlier messages),
and the message's ``seq}`` follows as a stored (uncompressed) deflate block. A server that
compresses each message with context takeover saves more bytes than this; the client's
inflating costs about the same (it scales with the bytes it produces)."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Sequence

import msgspec

from networkpype.demo._demo_connection import DemoConnection
from networkpype.demo.frames import frame_header
from networkpype.demo.market import StreamKind, SyntheticMarket

__all__ = ["deflate_templates", "send_stream", "stream_templates"]

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


def deflate_templates(templates: Sequence[bytes]) -> list[bytes]:
    """Each template deflated on its own and flushed to a byte boundary (RFC 7692 §7.2.1):
    a stored block with the rest of the message may follow it."""
    deflated = []
    for template in templates:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        deflated.append(compressor.compress(template) + compressor.flush(zlib.Z_SYNC_FLUSH))
    return deflated


def _stored_tail(data: bytes) -> bytes:
    """A non-final stored deflate block holding ``data`` (under 64 KiB), then the header
    byte of the empty stored block whose ``00 00 ff ff`` the receiver appends (RFC 7692
    §7.2.2: the sender removes those four bytes of its final flush)."""
    return b"\x00" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data + b"\x00"


async def send_stream(
    conn: DemoConnection,
    transport: asyncio.Transport,
    templates: Sequence[bytes],
    count: int,
    deflated: Sequence[bytes] | None = None,
) -> None:
    """Write ``count`` text frames (``seq`` 1..count) to ``transport``, counting them in
    ``conn.sent``; raises ``ConnectionResetError`` when the client goes away. With
    ``deflated`` (:func:`deflate_templates` of ``templates``) the frames are compressed."""
    sent = 0
    while sent < count:
        # Frames go straight to the transport, a batch per write: one write per frame
        # (a syscall each) would make the server, not the client, the bottleneck.
        upto = min(sent + _BATCH, count)
        batch = []
        for seq in range(sent + 1, upto + 1):
            if deflated is None:
                body = b"%b%d}" % (templates[seq % len(templates)], seq)
                batch.append(frame_header(len(body)) + body)
            else:
                body = deflated[seq % len(deflated)] + _stored_tail(b"%d}" % seq)
                batch.append(frame_header(len(body), compressed=True) + body)
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
