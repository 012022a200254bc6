"""Server-side WebSocket frames built by hand (RFC 6455 section 5.2), for the demo servers'
hot paths: writing a pre-built frame straight to the transport costs no ``await`` and no
per-frame syscall when frames are batched."""

from __future__ import annotations

import struct

__all__ = ["OP_PING", "OP_PONG", "OP_TEXT", "frame", "frame_header"]

OP_TEXT = 0x1
OP_PING = 0x9
OP_PONG = 0xA


def frame_header(length: int, opcode: int = OP_TEXT, *, compressed: bool = False) -> bytes:
    """The header of one unmasked, final frame carrying ``length`` payload bytes;
    ``compressed`` sets RSV1, the permessage-deflate bit (RFC 7692)."""
    first = 0x80 | (0x40 if compressed else 0) | opcode
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 65536:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One unmasked, final frame (control frames must carry at most 125 bytes)."""
    return frame_header(len(payload), opcode) + payload
