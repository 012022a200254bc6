"""What travels on the bus, as pure code: subjects, headers, message ids and the records a
collector publishes besides the venue's data. No I/O, no NATS client, no asyncio.

Subjects. Every venue topic has its own subject, ``{prefix}.{venue}.{token}``, where
``token`` is the topic with the characters NATS reserves in a subject (``.``, ``*``, ``>``,
whitespace) and ``%`` written as ``%XX`` (``btcusdt@trade`` stays as it is). A collector's
own records that concern no single topic go to ``{prefix}.{venue}._ctl.{collector}``.

Headers of a data message:

* ``Nats-Msg-Id``: ``{venue}:{topic}:{seq}`` when the venue numbers the topic's events,
  else ``{venue}:{topic}:#{digest of the payload}``. Every collector that receives the same
  venue event (a hot standby, both connections of a make-before-break rotation, a replay
  after a reconnect) publishes it under the same id, so JetStream keeps one copy within its
  de-duplication window.
* ``Np-Seq``: the venue's sequence number of the event, when it has one.
* ``Np-Received``: optional, Unix time in nanoseconds at which the collector took the
  message from its socket (a cross-process clock; it is what ``bench/`` measures with).

A record (anything but venue data) carries ``Np-Kind: record`` and a msgspec-encoded
:data:`BusRecord` as payload. Records a collector publishes are per topic and in order
with that topic's data, so a consumer far away learns what a local one would:

* the library's own ``Disconnected``/``Reconnected``/``GaveUp`` events (``connection_id``
  is ``{collector}/{shard}``), one per topic of the connection; ``MessagesDropped`` (the
  collector's own queue: any topic's messages) one per topic the collector serves;
* :class:`PartitionAcquired`, before a collector's first message of a topic it took over;
* :class:`PartitionReleased`, after its last message of a topic it gave back;
* :class:`PublishDropped`, when a collector could not reach NATS for long enough that its
  bounded buffer overflowed: which messages of the topic never reached the bus.

A consumer adds one record of its own, :class:`SequenceGap`: where the venue numbers a
topic's events, the exact messages the bus does not hold, just before the message after
them.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypeAlias

import msgspec

from networkpype.protocol.events import (
    Connected,
    Disconnected,
    GaveUp,
    MessagesDropped,
    Reconnected,
    RotationFinished,
    RotationStarted,
)

__all__ = [
    "CONTROL_TOKEN",
    "HEADER_KIND",
    "HEADER_MSG_ID",
    "HEADER_RECEIVED",
    "HEADER_SEQ",
    "KIND_RECORD",
    "BusRecord",
    "PartitionAcquired",
    "PartitionReleased",
    "PublishDropped",
    "SequenceGap",
    "check_name",
    "control_subject",
    "data_msg_id",
    "decode_record",
    "encode_record",
    "record_msg_id",
    "subject_for",
    "token_of",
    "topic_of_token",
    "venue_filter",
]

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_SEQ = "Np-Seq"
HEADER_KIND = "Np-Kind"
HEADER_RECEIVED = "Np-Received"
KIND_RECORD = "record"
CONTROL_TOKEN = "_ctl"

_RESERVED = frozenset(".*>% \t\r\n\f\v")


def check_name(what: str, name: str) -> str:
    """``name`` if it is a usable subject token (a prefix, a venue, a collector id): not
    empty, no ``.``, ``*``, ``>``, ``%`` or whitespace, not starting with ``_``. Raises
    ``ValueError`` naming ``what`` otherwise."""
    if not name or name.startswith("_") or any(c in _RESERVED for c in name):
        raise ValueError(
            f"{what} {name!r} must be a non-empty name without '.', '*', '>', '%' or "
            "whitespace, not starting with '_'"
        )
    return name


def token_of(topic: str) -> str:
    """The subject token of ``topic``: reserved characters as ``%XX``. Raises ``ValueError``
    for an empty topic."""
    if not topic:
        raise ValueError("a topic must not be empty")
    if not any(c in _RESERVED for c in topic):
        return topic  # the common case: nothing to escape
    return "".join(f"%{ord(c):02X}" if c in _RESERVED else c for c in topic)


def topic_of_token(token: str) -> str:
    """The inverse of :func:`token_of`."""
    if "%" not in token:
        return token
    out: list[str] = []
    i = 0
    while i < len(token):
        if token[i] == "%":
            out.append(chr(int(token[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(token[i])
            i += 1
    return "".join(out)


def subject_for(prefix: str, venue: str, topic: str) -> str:
    """The subject of ``topic``'s data and records."""
    return f"{prefix}.{venue}.{token_of(topic)}"


def control_subject(prefix: str, venue: str, collector_id: str) -> str:
    """The subject of ``collector_id``'s records that concern no single topic."""
    return f"{prefix}.{venue}.{CONTROL_TOKEN}.{collector_id}"


def venue_filter(prefix: str, venue: str) -> str:
    """The filter subject of everything published for ``venue``."""
    return f"{prefix}.{venue}.>"


def data_msg_id(venue: str, topic: str, seq: int | None, payload: bytes) -> str:
    """The de-duplicating id of one venue event (see the module docstring)."""
    if seq is not None:
        return f"{venue}:{topic}:{seq}"
    return f"{venue}:{topic}:#{hashlib.blake2b(payload, digest_size=12).hexdigest()}"


def record_msg_id(collector_id: str, number: int, topic: str) -> str:
    """The id of a collector's record: unique per collector run (``number`` counts the
    records of the run; ``collector_id`` names the run), so records are never collapsed
    with anything but their own re-sends."""
    return f"{collector_id}:r{number}:{topic}"


class _Record(msgspec.Struct, frozen=True, tag_field="event", tag=True, kw_only=True):
    at: float
    """Unix time (seconds) of the record, for display."""


class PartitionAcquired(_Record, frozen=True):
    """``collector_id`` took ``partition`` (its lease) and subscribes its topics from now on.
    ``previous_owner`` is the collector whose lease expired or was released (None for a
    partition nobody held); ``replica`` is the slot taken (0 unless hot standby)."""

    partition: int
    collector_id: str
    previous_owner: str | None = None
    replica: int = 0


class PartitionReleased(_Record, frozen=True):
    """``collector_id`` stopped serving ``partition`` (shutdown, a lost lease, a shard given
    up), or, published on one topic's subject alone, that topic of it (the venue rejected
    its subscription, or never answered its replay); ``cause`` says which. ``others``: the
    collectors that held another replica of it when it was released, as the releasing one
    last saw them (a hot standby): they go on publishing its topics (unless they too
    released the topic), so nothing is missed unless a ``SequenceGap`` says so."""

    partition: int
    collector_id: str
    cause: str
    replica: int = 0
    others: tuple[str, ...] = ()


class PublishDropped(_Record, frozen=True):
    """``collector_id`` dropped ``count`` messages of ``topic`` that never reached the bus
    (its buffer was full while NATS could not be reached). ``first_seq``/``last_seq``: the
    venue sequence numbers of the first and last of them, where the venue gives them."""

    topic: str
    collector_id: str
    count: int
    first_seq: int | None = None
    last_seq: int | None = None


class SequenceGap(_Record, frozen=True):
    """Made by a consumer, not published: the bus holds no message of ``topic`` with a
    sequence number in ``after + 1 .. after + missed``; the next message (``after + missed +
    1``) follows this record."""

    topic: str
    after: int
    missed: int


BusRecord: TypeAlias = (
    Connected
    | Disconnected
    | Reconnected
    | GaveUp
    | MessagesDropped
    | RotationStarted
    | RotationFinished
    | PartitionAcquired
    | PartitionReleased
    | PublishDropped
)
"""What a collector publishes with ``Np-Kind: record``."""

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(BusRecord)


def encode_record(record: BusRecord) -> bytes:
    """The payload of a record."""
    return _encoder.encode(record)


def decode_record(payload: bytes) -> BusRecord:
    """The record in a payload; raises ``msgspec.DecodeError``/``ValidationError`` for one
    that is not (a newer collector's record kind, say)."""
    record: BusRecord = _decoder.decode(payload)
    return record
