"""The messages networkpype's actors exchange, as frozen, tagged msgspec Structs.

Every message carries its class name in the tag field ``op`` (not msgspec's default ``type``,
which exchange payloads use). Messages are grouped by recipient in the union aliases at the
bottom, which the actors ``match`` on. Fields typed ``Any`` carry in-process objects
(requests, exceptions) and are never serialised; :data:`encoder`/:func:`decode_command` exist
for logging and tests of the pure parts.

Data frames are not messages: a connection's reader task hands them to the consumer's
delivery queue directly (see ``networkpype.actors.delivery``).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

__all__ = [
    "CloseSocket",
    "Connect",
    "ConnectionCommand",
    "ConnectionReport",
    "ConnectionSpec",
    "Disconnect",
    "ManagerCommand",
    "OpenSocket",
    "Send",
    "SendFrame",
    "SendPing",
    "SocketFailed",
    "SocketOpened",
    "Subscribe",
    "Unsubscribe",
    "encoder",
]


class _Message(msgspec.Struct, frozen=True, tag_field="op", tag=True, kw_only=True):
    """Base of every actor message."""


class ConnectionSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to (re)open one WebSocket; the seed's ``connect`` parameters.

    Seconds for every duration. ``headers`` are sent with the upgrade request.
    """

    url: str
    ping_timeout: float = 10.0
    auto_ping: bool = False
    message_timeout: float | None = None
    headers: dict[str, str] | None = None
    verify_ssl: bool = True


# -- to a connection actor ---------------------------------------------------------------


class OpenSocket(_Message, frozen=True):
    """Open the WebSocket described by ``spec`` and start reading it. Replies when open."""

    spec: ConnectionSpec


class SendFrame(_Message, frozen=True):
    """Send one frame: ``str`` as text, ``bytes`` as binary."""

    frame: str | bytes


class SendPing(_Message, frozen=True):
    """Send one WebSocket ping frame."""


class CloseSocket(_Message, frozen=True):
    """Stop reading and close the WebSocket with 1000. Idempotent."""


ConnectionCommand: TypeAlias = OpenSocket | SendFrame | SendPing | CloseSocket


# -- from a connection actor to its parent ------------------------------------------------


class SocketOpened(_Message, frozen=True):
    """The connection ``connection_id`` is open to ``url``."""

    connection_id: str
    url: str


class SocketFailed(_Message, frozen=True):
    """The connection ``connection_id`` broke; ``error`` is the error-tree exception."""

    connection_id: str
    error: Any


ConnectionReport: TypeAlias = SocketOpened | SocketFailed


# -- to a manager actor -------------------------------------------------------------------


class Connect(_Message, frozen=True):
    """Open the managed connection. Replies when open; raises the handshake error."""

    spec: ConnectionSpec


class Disconnect(_Message, frozen=True):
    """Close the managed connection. Idempotent."""


class Send(_Message, frozen=True):
    """Run ``request`` through the outbound pipeline and send it."""

    request: Any


class Subscribe(_Message, frozen=True):
    """Send ``request`` and record it for replay after every reconnection."""

    request: Any


class Unsubscribe(_Message, frozen=True):
    """Forget a recorded subscription; ``send`` (optional) goes out to tell the server."""

    subscription: Any
    send: Any = None


ManagerCommand: TypeAlias = Connect | Disconnect | Send | Subscribe | Unsubscribe

encoder = msgspec.json.Encoder()
"""Encodes any message above (fields holding in-process objects must be None or plain)."""
