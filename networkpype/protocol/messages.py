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

from networkpype.protocol.options import ConnectionOptions

__all__ = [
    "AbortSocket",
    "Acquire",
    "ChildGaveUp",
    "ChildRestarted",
    "CloseSocket",
    "Connect",
    "ConnectionCommand",
    "ConnectionReport",
    "ConnectionSpec",
    "Disconnect",
    "ManagerCommand",
    "OpenChild",
    "OpenSocket",
    "Release",
    "ReplayDone",
    "Send",
    "SendFrame",
    "SendPing",
    "SendRequest",
    "SetLimits",
    "SocketFailed",
    "SocketOpened",
    "StartChild",
    "StartReading",
    "Subscribe",
    "SupervisorCommand",
    "SupervisorReport",
    "TerminateChild",
    "ThrottlerCommand",
    "Unsubscribe",
    "encoder",
]


class _Message(msgspec.Struct, frozen=True, tag_field="op", tag=True, kw_only=True):
    """Base of every actor message."""


class ConnectionSpec(ConnectionOptions, frozen=True, kw_only=True):
    """Everything needed to (re)open one WebSocket: its ``url`` and its
    :class:`~networkpype.protocol.options.ConnectionOptions` (every field of those, flat)."""

    url: str

    @classmethod
    def of(cls, url: str, options: ConnectionOptions) -> ConnectionSpec:
        """The spec of ``url`` with ``options``."""
        return cls(url=url, **msgspec.structs.asdict(options))


# -- to a connection actor ---------------------------------------------------------------


class OpenSocket(_Message, frozen=True):
    """Open the WebSocket described by ``spec`` and start reading it. Replies at once with an
    ``asyncio.Future`` that completes when open, or fails with the handshake's error (with
    ``ConnectAbortedError`` when the actor is closed or stopped first: the handshake runs in
    a task of the actor's, so its inbox stays free). Cancelling the future stops the opening.

    ``down_since`` (monotonic seconds) marks a reopening after a failure: the consumer is
    told ``Reconnected`` with the downtime, after ``attempts`` tries.
    """

    spec: ConnectionSpec
    down_since: float | None = None
    attempts: int = 0
    start_reading: bool = True


class StartReading(_Message, frozen=True):
    """Announce the open connection to the consumer and start reading it (after an
    ``OpenSocket`` with ``start_reading=False``). Idempotent."""


class SendFrame(_Message, frozen=True):
    """Send one frame: ``str`` as text, ``bytes`` as binary."""

    frame: str | bytes


class SendRequest(_Message, frozen=True):
    """Send a request whose class says how it goes out (it overrides
    ``WebSocketRequest.send_with_connection``): the actor calls that on its connection."""

    request: Any


class SendPing(_Message, frozen=True):
    """Send one WebSocket ping frame (to a manager: on connection ``connection_id``)."""

    connection_id: str | None = None


class AbortSocket(_Message, frozen=True):
    """Drop the connection as failed with ``error`` (reported to the parent like any failure:
    the supervisor classifies it). For failures found outside the socket, such as an
    ``on_connect`` hook that raised."""

    error: Any


class CloseSocket(_Message, frozen=True):
    """Stop reading and close the WebSocket with 1000. Idempotent."""


class ReplayDone(_Message, frozen=True):
    """To a connection actor: its subscriptions are replayed (or, on a first connection,
    went out live). Data that arrives after this proves the connection healthy."""


ConnectionCommand: TypeAlias = (
    OpenSocket
    | StartReading
    | SendFrame
    | SendRequest
    | SendPing
    | CloseSocket
    | AbortSocket
    | ReplayDone
)


# -- from a connection actor to its parent ------------------------------------------------


class SocketOpened(_Message, frozen=True):
    """The connection ``connection_id`` (its ``generation``-th incarnation) is open."""

    connection_id: str
    url: str
    generation: int = 0


class SocketFailed(_Message, frozen=True):
    """The connection ``connection_id`` broke; ``error`` is the error-tree exception.
    A report whose ``generation`` is not the current incarnation's is stale. ``served``: the
    connection had proved healthy (data arrived after its subscriptions were replayed), so
    the restart policy starts afresh (see ``RestartPolicy.on_failure``)."""

    connection_id: str
    error: Any
    generation: int = 0
    served: bool = False




ConnectionReport: TypeAlias = SocketOpened | SocketFailed


# -- to a supervisor actor, and from it to its listeners ---------------------------------


class StartChild(_Message, frozen=True):
    """Start a child (``spec`` is a ``networkpype.supervisor.ChildSpec``) and supervise it.
    Replies at once with an ``asyncio.Future`` of the child's ref (the start runs in a task
    of the child's own); the first start's error is the future's, not retried unless
    ``retry``: then the failures go through the child's restart policy (a fatal one, or the
    give-up, is the future's error). Cancelling the future abandons the start."""

    spec: Any
    retry: bool = False


class TerminateChild(_Message, frozen=True):
    """Stop the child ``child_id`` and forget it: no restart. Idempotent."""

    child_id: str


class OpenChild(_Message, frozen=True):
    """From a supervisor to a child's owner (``ChildSpec.owner``): start and open incarnation
    ``generation`` of ``child_id``, and complete ``reply`` (an ``asyncio.Future`` the
    supervisor awaits) with its ref, or with the attempt's error. The owner opens it in a task
    of its own (its inbox stays free meanwhile); a ``reply`` cancelled before it is complete
    means the supervisor stopped waiting: the owner stops the opening, or the child it opened.
    The child reports ``SocketOpened``/``SocketFailed`` with ``generation``. ``down_since``
    (monotonic) is None on the first start; ``attempt`` counts the attempts of this outage."""

    child_id: str
    generation: int
    down_since: float | None
    attempt: int
    reply: Any


class ChildRestarted(_Message, frozen=True):
    """To listeners: ``child_id`` was restarted; ``ref`` is the new incarnation."""

    child_id: str
    ref: Any
    attempt: int


class ChildGaveUp(_Message, frozen=True):
    """To listeners and the parent: the supervisor stopped restarting ``child_id``;
    ``error`` is a ``GaveUpError`` whose ``__cause__`` is the last failure."""

    child_id: str
    reason: str
    error: Any


SupervisorCommand: TypeAlias = StartChild | TerminateChild | SocketOpened | SocketFailed
SupervisorReport: TypeAlias = OpenChild | ChildRestarted | ChildGaveUp


# -- to a throttler actor -----------------------------------------------------------------


class Acquire(_Message, frozen=True):
    """Reserve a start for a task on ``limit_id``; ``token`` is the caller's unique name for
    it. Replies with a future that resolves with the ``Reservation`` at its start time, or
    raises if the limit vanished or no longer fits."""

    limit_id: str
    token: int


class Release(_Message, frozen=True):
    """The task ``token`` will not run (its wait was cancelled). Sent after its ``Acquire``,
    so it is handled after it even when the caller was cancelled before the reply."""

    token: int


class SetLimits(_Message, frozen=True):
    """Replace every rate limit and the share percentage; waiting tasks are replanned."""

    rate_limits: list[Any]
    limits_share_percentage: Any = None


ThrottlerCommand: TypeAlias = Acquire | Release | SetLimits


# -- to a manager actor -------------------------------------------------------------------


class Connect(_Message, frozen=True):
    """Open a managed connection. Replies at once with an ``asyncio.Future`` that completes
    when it is open or fails with the handshake error (the manager's inbox does not wait on
    a handshake). Cancelling the future does not close it: send ``Disconnect``. A
    ``Disconnect`` (or the manager's stop) before it is open fails it with
    ``ConnectAbortedError``.

    ``connection_id`` names it (None: the manager's own name); ``connection`` is the
    ``WebSocketConnection`` to drive (None: the manager's own); ``pace`` (a
    ``networkpype.actors.manager.Pace``) spaces its frames; ``retry`` retries the first
    opening by the restart policy (see ``StartChild``)."""

    spec: ConnectionSpec
    connection_id: str | None = None
    connection: Any = None
    pace: Any = None
    retry: bool = False


class Disconnect(_Message, frozen=True):
    """Close the connection ``connection_id`` for good, or (None) every connection and the
    supervisor. Idempotent."""

    connection_id: str | None = None


class Send(_Message, frozen=True):
    """Run ``request`` through the outbound pipeline and send it on connection
    ``connection_id`` (None: the manager's first)."""

    request: Any
    connection_id: str | None = None


class Subscribe(_Message, frozen=True):
    """Send ``request`` and record it for replay after every reconnection of connection
    ``connection_id`` (None: the manager's first)."""

    request: Any
    connection_id: str | None = None


class Unsubscribe(_Message, frozen=True):
    """Forget a recorded subscription; ``send`` (optional) goes out to tell the server.
    ``replacement`` (optional) takes its place in the replay order, recorded but not sent
    (what is left of a batched subscription)."""

    subscription: Any
    send: Any = None
    connection_id: str | None = None
    replacement: Any = None


ManagerCommand: TypeAlias = Connect | Disconnect | Send | Subscribe | Unsubscribe

encoder = msgspec.json.Encoder()
"""Encodes any message above (fields holding in-process objects must be None or plain)."""
