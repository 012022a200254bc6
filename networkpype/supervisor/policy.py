"""The supervision policy, as pure code: classify a failure, pick the next delay, count restarts.

Nothing here does I/O or reads a clock: every event carries ``now``, float seconds of a
monotonic clock (``time.monotonic()`` or ``loop.time()``), and every call returns a decision
and a new frozen :class:`ChildState`. The supervisor actor owns one state per child, feeds it
events and carries out the decisions (sleep, redial, replay, escalate)::

    policy = RestartPolicy()
    state = ChildState()                                 # STARTING: the first dial
    state = policy.on_opened(state, now)                 # RUNNING
    decision, state = policy.on_failure(state, exc, now)
    match decision:
        case Restart(delay=delay): ...                   # redial after `delay` seconds
        case Escalate(reason=reason, error=error): ...   # raise GaveUpError(reason) from error
        case Ignore(): ...                               # drop the child; nothing to restart

Classification (:func:`classify`; the guide's ``docs/supervision.md`` has the same table):

- **RETRY**: network errors: ``ConnectionFailedError``, any ``OSError`` (aiohttp's client
  errors are ``OSError``\\s or unknown exceptions, both retried); ``ConnectionClosedError``
  without a code or with 1000 (a server-side normal close is still a gap in a stream), 1001,
  1005, 1006, 1011-1014, 4000-4999, the protocol/data errors 1002, 1003, 1007, 1010 (glitches
  a healthy venue may produce once: they escalate only by repeating) or any other code;
  ``HandshakeError`` with 408, 5xx or a non-4xx status (a broken 101); ``TimeoutError`` and
  its subclasses (``MessageTimeoutError``, liveness / half-open timeouts);
  ``MessageTooBigError`` (one oversized message must not end a bot's subscriptions; a server
  that sends one on every connection is stopped by the restart intensity); any unknown
  ``Exception`` (it still counts toward the intensity).
- **COOL_OFF**: ``HandshakeError`` 429 or 418 and close code 1008: wait ``cool_off`` (60 s),
  or the server's ``Retry-After`` when it sent one, and never less than the backoff.
- **FATAL**: ``FatalError`` (``HandshakeRejectedError`` 401/403/404, ``CertificateError``,
  ``InvalidURLError``) except ``MessageTooBigError``; ``HandshakeError`` with any other 4xx;
  ``UsageError`` (``ConfigurationError`` included); a TLS certificate failure anywhere on the
  ``__cause__`` chain (``ssl.SSLCertVerificationError``, aiohttp's ``certificate_error``);
  a ``BaseException`` that is not an ``Exception`` (cancellation, ``KeyboardInterrupt``):
  never a failure to restart from.

``GaveUpError`` (a nested supervisor gave up) is classified by its ``__cause__``, the nested
child's last failure: a fatal cause stays fatal; otherwise it is restarted, as OTP restarts a
child supervisor that reached its intensity, bounded by this supervisor's own intensity.
A ``Retry-After`` on any ``HandshakeError`` (a 503 too) becomes the verdict's ``delay_floor``.

Defaults
--------

| Setting                       | Default       | Unit     | Meaning                               |
|-------------------------------|---------------|----------|---------------------------------------|
| `BackoffPolicy.initial`       | `0.5`         | s        | bound of restart 2's delay; doubles   |
| `BackoffPolicy.cap`           | `30.0`        | s        | largest backoff delay                 |
| `BackoffPolicy.jitter`        | `0.5`         | fraction | random share of each delay (0: none)  |
| `BackoffPolicy.healthy_after` | `10.0`        | s        | health that resets the attempt count  |
| `RestartPolicy.max_restarts`  | `15`          | restarts | N; `None`: never escalate non-fatal   |
| `RestartPolicy.within`        | `900.0`       | s        | T: more than N restarts in T escalate |
| `RestartPolicy.cool_off`      | `60.0`        | s        | 429/418/1008 wait w/o Retry-After     |
| `RestartPolicy.restart_type`  | `PERMANENT`   | -        | OTP restart type (`RestartType`)      |
| `RestartPolicy.classifier`    | `classify`    | -        | `BaseException -> Verdict`            |
| `Strategy` (supervisor)       | `ONE_FOR_ONE` | -        | who restarts with a failed child      |

Restart 1 after a reset waits 0 s; restart *k* >= 2 waits uniformly in
``[(1 - jitter) * d_k, d_k]`` with ``d_k = min(cap, initial * 2 ** (k - 2))``. A cool-off or
``Retry-After`` delay is never shortened by the backoff: the larger of the two is used. Opening
never resets the counter; a connection that proved healthy does: one that ``served`` data after
its replay (``on_failure(..., served=True)``), or stayed open ``healthy_after`` seconds without
a failure. Its failure restarts at once and is not counted in the restart intensity, which
stops crash loops, not flaky venues. One exception keeps a venue from being hammered: a
connection that served data but that the venue itself ended (a close frame of its own, a frame
that breaks the protocol, a message too big) before ``healthy_after`` does not reset the
backoff (a venue that answers each subscription and then closes would otherwise be redialled
in a tight loop); its restart still does not count towards giving up. A link that broke (a
reset, the end of stream, no answer to a ping) restarts at once, however often.

Escalation arithmetic, with the defaults
----------------------------------------

Restart *k* (since the last healthy period) waits 0 s for k = 1, then up to 0.5, 1, 2, 4, 8, 16 s
(k = 2..7, sum 31.5 s) and up to 30 s from k = 8 on; with ``jitter=0.5`` each wait is at least
half its bound. Restarts are counted at the failure that triggers them. In a continuous outage
whose attempts fail at once, failure 16 arrives after the waits of restarts 1..15::

    upper: 31.5 + 8 * 30 = 271.5 s      lower: 271.5 / 2 = 135.75 s      mean: 0.75 * 271.5 ~ 204 s

so the 16th failure finds 15 restarts inside the 900 s window and escalates **2.3-4.5 minutes
(about 3.4 on average) after the first failure**. If each attempt itself takes ``f`` seconds to
fail (a connect timeout), that is ``271.5 + 15 f`` at worst, which still fits 900 s up to
f ~ 41 s; and once at the cap, 15 cycles of at most ``30 + f`` fit in 900 s while f <= 30 s,
which is why T / N = 60 s = 2 x cap: an outage escalates even when every attempt hangs for a
cap's worth. Cool-off restarts are at least ``cool_off`` + the attempt's duration apart, so 16
of them never fit in 900 s: a venue that keeps answering 429 without ``Retry-After`` is retried
about once a minute and never escalates (it asked us to wait, not to give up). A connection
that fails after it proved healthy restarts at once each time and never escalates (a week of
drops every 30 s: 20,160 immediate restarts). An accept-then-close server gets at most 10
attempts in its first minute. Fatal errors escalate at once.

The pieces live in private modules, re-exported here: ``_classify`` (:func:`classify`,
:class:`Verdict`, :class:`Kind`), ``_backoff`` (:class:`BackoffPolicy`), ``_decisions``
(:class:`Restart`, :class:`Escalate`, :class:`Ignore`), ``_strategy`` (:class:`RestartType`,
:class:`Strategy`, :func:`children_to_restart`); this module holds the state machine
(:class:`RestartPolicy`, :class:`ChildState`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Final

import msgspec

from networkpype.protocol.errors import (
    ConfigurationError,
    ConnectionClosedError,
    MessageTooBigError,
    UsageError,
)
from networkpype.supervisor._backoff import BackoffPolicy
from networkpype.supervisor._classify import Kind, Verdict, classify
from networkpype.supervisor._decisions import Decision, Escalate, Ignore, Restart
from networkpype.supervisor._strategy import RestartType, Strategy, children_to_restart

__all__ = [
    "BackoffPolicy",
    "ChildState",
    "Decision",
    "Escalate",
    "Event",
    "Ignore",
    "Kind",
    "Phase",
    "Restart",
    "RestartPolicy",
    "RestartType",
    "Strategy",
    "Verdict",
    "children_to_restart",
    "classify",
]


class Phase(enum.Enum):
    """Where a child is. ``STOPPED`` and ``ESCALATED`` are final: start a fresh ``ChildState``."""

    STARTING = "starting"  # being (re)started or waiting to be: not open yet
    RUNNING = "running"  # open since ``healthy_since``
    STOPPED = "stopped"  # ended and not to be restarted (an ``Ignore`` decision)
    ESCALATED = "escalated"  # given up on (an ``Escalate`` decision)


class Event(enum.Enum):
    """What the supervisor reports about a child."""

    OPENED = "opened"
    HEALTHY_CHECK = "healthy_check"
    FAILURE = "failure"
    NORMAL_EXIT = "normal_exit"
    SIBLING_RESTART = "sibling_restart"


_S, _R, _STOP, _ESC = Phase.STARTING, Phase.RUNNING, Phase.STOPPED, Phase.ESCALATED

# Every legal transition: (phase, event) -> phases the event may lead to. Nothing else changes
# ``ChildState.phase``; a pair not listed is an illegal event in that phase.
_TRANSITIONS: Final[dict[tuple[Phase, Event], frozenset[Phase]]] = {
    (_S, Event.OPENED): frozenset({_R}),
    (_S, Event.HEALTHY_CHECK): frozenset({_S}),  # a timer racing a failure: nothing to do
    (_R, Event.HEALTHY_CHECK): frozenset({_R}),
    (_S, Event.FAILURE): frozenset({_S, _STOP, _ESC}),
    (_R, Event.FAILURE): frozenset({_S, _STOP, _ESC}),
    (_S, Event.NORMAL_EXIT): frozenset({_S, _STOP, _ESC}),
    (_R, Event.NORMAL_EXIT): frozenset({_S, _STOP, _ESC}),
    (_S, Event.SIBLING_RESTART): frozenset({_S, _STOP}),
    (_R, Event.SIBLING_RESTART): frozenset({_S, _STOP}),
}


class ChildState(msgspec.Struct, frozen=True, kw_only=True):
    """One child's supervision bookkeeping; frozen, replaced by every event.

    ``attempt`` is the number of restarts since the last healthy period, ``restarts`` the
    monotonic times (seconds) of the restarts inside the intensity window, oldest first,
    ``healthy_since`` when the child last opened (``None`` unless ``RUNNING``). ``ChildState()``
    is a child on its first start.
    """

    phase: Phase = Phase.STARTING
    attempt: int = 0
    restarts: tuple[float, ...] = ()
    healthy_since: float | None = None


def _check(state: ChildState, event: Event, now: float) -> None:
    if (state.phase, event) not in _TRANSITIONS:
        hint = " (a final state: start a fresh ChildState)" if state.phase in (_STOP, _ESC) else ""
        raise UsageError(
            f"illegal supervision event {event.value!r} in state {state.phase.value!r}{hint}"
        )
    stamps = (*state.restarts, *(() if state.healthy_since is None else (state.healthy_since,)))
    latest = max(stamps, default=-math.inf)
    if not math.isfinite(now) or now < latest:
        raise UsageError(
            f"supervision event {event.value!r} in state {state.phase.value!r} at now={now!r}: "
            f"the clock must be monotonic and finite (last event at {latest!r})"
        )


def _move(state: ChildState, event: Event, phase: Phase, **changes: object) -> ChildState:
    if phase not in _TRANSITIONS.get((state.phase, event), frozenset()):
        raise UsageError(  # a bug here, not the caller's: the table and the code disagree
            f"illegal supervision transition {state.phase.value!r} -> {phase.value!r} "
            f"on event {event.value!r}"
        )
    if phase is not _R:
        changes.setdefault("healthy_since", None)
    return msgspec.structs.replace(state, phase=phase, **changes)


_NORMAL_EXIT: Final = Verdict(Kind.RETRY, None, "normal exit of a permanent child; restarting")
_SIBLING: Final = Verdict(Kind.RETRY, None, "restarted with a failed sibling")


class RestartPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """One child's restart policy: its restart type, backoff, intensity and classifier.

    The ``on_*`` methods are the state machine: each takes the child's state and ``now``
    (monotonic seconds, never decreasing) and returns the new state, with a :data:`Decision`
    for exits. An event that is illegal in the state's phase (``OPENED`` twice, anything after
    ``STOPPED``/``ESCALATED``), or a ``now`` earlier than the state's last event, raises
    ``UsageError`` naming the state and the event. Invalid settings raise ``ConfigurationError``.
    """

    restart_type: RestartType = RestartType.PERMANENT
    backoff: BackoffPolicy = BackoffPolicy()
    max_restarts: int | None = 15
    within: float = 900.0
    cool_off: float = 60.0
    classifier: Callable[[BaseException], Verdict] = classify

    def __post_init__(self) -> None:
        if self.max_restarts is not None and self.max_restarts < 0:
            raise ConfigurationError(f"max_restarts={self.max_restarts!r}: need >= 0 or None")
        for name in ("within", "cool_off"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"RestartPolicy.{name}={value!r}: need a finite >= 0")

    def on_opened(self, state: ChildState, now: float) -> ChildState:
        """The child is open (and, if the supervisor replays subscriptions, replayed):
        ``STARTING`` -> ``RUNNING``, healthy from ``now``."""
        _check(state, Event.OPENED, now)
        return _move(state, Event.OPENED, _R, healthy_since=now)

    def on_healthy_check(self, state: ChildState, now: float) -> ChildState:
        """Reset the attempt counter if the child has been open for ``healthy_after`` seconds.

        Optional (the exits apply the same reset); call it from a timer to keep ``attempt``
        current for statistics. A no-op while ``STARTING``.
        """
        _check(state, Event.HEALTHY_CHECK, now)
        return _move(state, Event.HEALTHY_CHECK, state.phase, attempt=self._attempt(state, now))

    def on_failure(
        self, state: ChildState, error: BaseException, now: float, *, served: bool = False
    ) -> tuple[Decision, ChildState]:
        """The child failed with ``error`` (any failure is an abnormal exit, a server-sent
        close 1000 included). Fatal errors escalate at once; a temporary child is dropped.

        ``served``: the failed connection had proved healthy (it opened, its subscriptions
        were replayed and data arrived after that). The venue serves us: the backoff
        restarts from scratch (the restart is immediate, unless a cool-off or
        ``Retry-After`` asks for a wait) and the restart does not count towards the restart
        intensity, which exists to stop crash loops, not flaky venues.
        """
        _check(state, Event.FAILURE, now)
        verdict = self.classifier(error)
        if self.restart_type is RestartType.TEMPORARY:
            reason = f"temporary child failed, not restarted: {verdict.reason}"
            return Ignore(reason, error), _move(state, Event.FAILURE, _STOP)
        if verdict.kind is Kind.FATAL:
            escalate = Escalate(f"fatal: {verdict.reason}", error)
            return escalate, _move(state, Event.FAILURE, _ESC)
        return self._restart(state, Event.FAILURE, verdict, error, now, served=served)

    def on_normal_exit(self, state: ChildState, now: float) -> tuple[Decision, ChildState]:
        """The child ended normally: a clean close we initiated, or a stop the user asked of
        the child. Only a permanent child is restarted (backoff and intensity apply). Do not
        report a child the supervisor itself terminates or removes."""
        _check(state, Event.NORMAL_EXIT, now)
        if self.restart_type is not RestartType.PERMANENT:
            reason = f"{self.restart_type.value} child exited normally"
            return Ignore(reason), _move(state, Event.NORMAL_EXIT, _STOP)
        return self._restart(state, Event.NORMAL_EXIT, _NORMAL_EXIT, None, now)

    def on_sibling_restart(self, state: ChildState, now: float) -> tuple[Decision, ChildState]:
        """A sibling's failure restarts this child too (``ONE_FOR_ALL``/``REST_FOR_ONE``).

        Returns ``Restart(delay=0)``: start it right after the failed child's own delay. It did
        not fail, so neither its backoff nor its intensity counts this; a temporary child is
        dropped instead, as in OTP.
        """
        _check(state, Event.SIBLING_RESTART, now)
        if self.restart_type is RestartType.TEMPORARY:
            reason = "temporary child stopped with a failed sibling, not restarted"
            return Ignore(reason), _move(state, Event.SIBLING_RESTART, _STOP)
        attempt = self._attempt(state, now)
        new = _move(state, Event.SIBLING_RESTART, _S, attempt=attempt)
        return Restart(0.0, _SIBLING, attempt), new

    def _attempt(self, state: ChildState, now: float) -> int:
        """``state.attempt``, or 0 once the child has been healthy for ``healthy_after``."""
        return 0 if self._healthy(state, now) else state.attempt

    def _healthy(self, state: ChildState, now: float) -> bool:
        """Open for ``healthy_after`` seconds without a failure."""
        since = state.healthy_since
        return state.phase is _R and since is not None and now - since >= self.backoff.healthy_after

    def _restart(
        self,
        state: ChildState,
        event: Event,
        verdict: Verdict,
        error: BaseException | None,
        now: float,
        *,
        served: bool = False,
    ) -> tuple[Decision, ChildState]:
        window = tuple(t for t in state.restarts if t >= now - self.within)
        # A child that proved healthy (served data, or stayed up for healthy_after) failed:
        # a fresh start, not one more turn of a crash loop. Not counted towards giving up;
        # the backoff starts afresh too, unless the venue itself ended a connection that
        # had been up less than healthy_after (see the module docstring: no tight loop).
        healthy = self._healthy(state, now)
        proven = served or healthy
        fresh = healthy or (served and not _ended_by_venue(error))
        limit = self.max_restarts
        if not proven and limit is not None and len(window) + 1 > limit:
            reason = (
                f"{len(window) + 1} restarts within {self.within:g} s would exceed "
                f"max_restarts={limit}; last failure: {verdict.reason}"
            )
            return Escalate(reason, error), _move(state, event, _ESC, restarts=window)
        attempt = 1 if fresh else state.attempt + 1
        floor = verdict.delay_floor
        if floor is None and verdict.kind is Kind.COOL_OFF:
            floor = self.cool_off
        delay = max(self.backoff.delay(attempt), floor or 0.0)
        counted = window if proven else (*window, now)
        new = _move(state, event, _S, attempt=attempt, restarts=counted)
        return Restart(delay, verdict, attempt), new


_BROKEN_LINK: Final = 1006  # RFC 6455: no close frame, the link broke


def _ended_by_venue(error: BaseException | None) -> bool:
    """Did the venue end the connection itself (a close frame of its own, frames that break
    the protocol, a message above the limit), rather than the link breaking under it?"""
    if isinstance(error, ConnectionClosedError):
        return error.code is not None and error.code != _BROKEN_LINK
    return isinstance(error, MessageTooBigError)
