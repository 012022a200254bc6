"""The managers' options objects: :class:`ManagerOptions` for a ``WebSocketManager``,
:class:`ShardedOptions` for a ``ShardedWebSocketManager``.

Each setting is defined here once, with its default and its check (``ConfigurationError``
naming the setting, raised when the object is made). The managers' and the factory's keyword
signatures are the seed's adapters: they build one of these, or take it whole as
``options=`` (a setting given both ways is a ``ConfigurationError``). A new setting is a
field here; it needs no keyword anywhere (``options=`` carries it), and the code that uses it
reads it from the options object. The connection's own settings (liveness, headers,
compression) are :class:`~networkpype.protocol.options.ConnectionOptions`, given to
``connect()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import msgspec
from pykka import ActorRef

from networkpype.actors.manager import OnConnect
from networkpype.protocol.errors import ConfigurationError
from networkpype.protocol.options import (
    DEFAULT_MAX_QUEUE,
    GAVE_UP_POLICIES,
    OnGaveUp,
    Overflow,
    check_choice,
    check_queue,
)
from networkpype.supervisor.policy import RestartPolicy
from networkpype.supervisor.supervisor import EscalationHandler
from networkpype.websocket._budget import AttemptBudget
from networkpype.websocket.codec import TopicCodec
from networkpype.wire.decoding import DecoderSpec, MessageDecoder  # noqa: F401  (DecoderSpec's names)
from networkpype.wire.pacing import FramePacer

__all__ = ["ManagerOptions", "ShardedOptions"]


class _Supervised(msgspec.Struct, frozen=True, kw_only=True):
    """What both kinds of manager have: the consumer's queue and the supervision."""

    max_queue: int = DEFAULT_MAX_QUEUE
    overflow: Overflow = "block"
    restart_policy: RestartPolicy | None = None
    on_escalate: EscalationHandler | None = None
    parent: ActorRef[Any] | None = None

    def __post_init__(self) -> None:
        check_queue(self.max_queue, self.overflow)

    @property
    def policy(self) -> RestartPolicy:
        """``restart_policy``, or the default ``RestartPolicy()`` when None."""
        return self.restart_policy or RestartPolicy()


class ManagerOptions(_Supervised, frozen=True, kw_only=True):
    """The settings of a ``WebSocketManager`` (see there for their meaning).

    ``max_queue`` (messages, at least 1) bounds the queue towards the consumer and
    ``overflow`` says what a full one does: ``"block"`` (reading stops, nothing is lost),
    ``"drop_oldest"`` or ``"error"``. Supervision: ``restart_policy`` (None:
    ``RestartPolicy()``), ``on_connect`` (an async function returning the requests to send
    before each replay), ``on_escalate(connection_id, error)`` and ``parent`` (an actor told
    ``ChildGaveUp``) when the supervisor gives up.
    """

    on_connect: OnConnect | None = None


class ShardedOptions(_Supervised, frozen=True, kw_only=True):
    """The settings of a ``ShardedWebSocketManager`` (see there, and docs/sharding.md).

    Besides the queue and supervision settings of :class:`ManagerOptions` (no
    ``on_connect``): ``codec`` (the venue's subscription protocol; None: ``BinanceCodec()``),
    ``max_topics_per_connection`` (at least 1), the venue's limits as the venue states them:
    ``min_send_interval`` (seconds between two frames of a connection), ``max_connection_attempts``
    (``(attempts, window_seconds)``), ``max_age`` (seconds); ``ack_timeout`` (seconds before a
    subscription is sent again), ``rotation_stagger`` and ``rotation_overlap`` (seconds, at
    least 0), ``dedup_key`` (``data -> key``, removes duplicates around a rotation),
    ``stats_interval`` (seconds between statistics records), ``decoder`` (see
    ``networkpype.wire.decoding``) and ``on_shard_gave_up`` (``"continue"`` or ``"stop"``).
    """

    codec: TopicCodec | None = None
    max_topics_per_connection: int = 200
    min_send_interval: float | None = None
    max_connection_attempts: tuple[int, float] | None = None
    ack_timeout: float = 10.0
    max_age: float | None = None
    rotation_stagger: float = 0.1
    rotation_overlap: float = 1.0
    dedup_key: Callable[[Any], Hashable] | None = None
    stats_interval: float | None = None
    decoder: DecoderSpec = None
    on_shard_gave_up: OnGaveUp = "continue"

    def __post_init__(self) -> None:
        check_choice("on_shard_gave_up", self.on_shard_gave_up, GAVE_UP_POLICIES)
        if self.max_topics_per_connection < 1:
            raise ConfigurationError(
                f"max_topics_per_connection must be >= 1, got {self.max_topics_per_connection}"
            )
        if self.min_send_interval is not None:
            FramePacer(self.min_send_interval)  # raises ConfigurationError for a bad interval
        if not (self.ack_timeout > 0 and math.isfinite(self.ack_timeout)):
            raise ConfigurationError(
                f"ack_timeout must be a number of seconds > 0, got {self.ack_timeout!r}"
            )
        for name, seconds in (
            ("rotation_stagger", self.rotation_stagger),
            ("rotation_overlap", self.rotation_overlap),
        ):
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ConfigurationError(
                    f"{name} must be a number of seconds >= 0, got {seconds!r}"
                )
        self.attempt_budget()  # raises ConfigurationError for a bad max_connection_attempts
        super().__post_init__()
        max_age = self.max_age
        if max_age is not None and not (max_age > 0 and math.isfinite(max_age)):
            raise ConfigurationError(f"max_age must be a number of seconds > 0, got {max_age!r}")

    def attempt_budget(self) -> AttemptBudget | None:
        """A fresh ``AttemptBudget`` of ``max_connection_attempts`` (None: no limit)."""
        if self.max_connection_attempts is None:
            return None
        try:
            attempts, window = self.max_connection_attempts
        except (TypeError, ValueError):
            raise ConfigurationError(
                "max_connection_attempts must be (attempts, window_seconds), got "
                f"{self.max_connection_attempts!r}"
            ) from None
        return AttemptBudget(attempts, window)
