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

Classification (:func:`classify`; DESIGN.md "Supervision"):

- **RETRY**: network errors: ``ConnectionFailedError``, any ``OSError`` (aiohttp's client
  errors are ``OSError``\\s or unknown exceptions, both retried); ``ConnectionClosedError``
  without a code or with 1000 (a server-side normal close is still a gap in a stream), 1001,
  1005, 1006, 1011-1014, 4000-4999 or any other code not listed below; ``HandshakeError``
  with 408, 5xx or a non-4xx status (a broken 101); ``TimeoutError`` and its subclasses
  (``MessageTimeoutError``, liveness / half-open timeouts); ``MessageTooBigError`` (one
  oversized message must not end a bot's subscriptions; a server that sends one on every
  connection is stopped by the restart intensity); any unknown ``Exception`` (it still counts
  toward the intensity).
- **COOL_OFF**: ``HandshakeError`` 429 or 418 and close code 1008: wait ``cool_off`` (60 s),
  or the server's ``Retry-After`` when it sent one, and never less than the backoff.
- **FATAL**: ``FatalError`` (``HandshakeRejectedError`` 401/403/404, ``CertificateError``,
  ``InvalidURLError``) except ``MessageTooBigError``; ``HandshakeError`` with any other 4xx;
  ``UsageError`` (``ConfigurationError`` included); close codes 1002, 1003, 1007, 1010
  (protocol/data errors that would repeat); a TLS certificate failure anywhere on the
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
never resets the counter; ``healthy_after`` seconds of being open without a failure do.

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
that flaps after more than ``healthy_after`` of health restarts at once each time and escalates
at the 16th flap if the flaps come faster than one a minute. Fatal errors escalate at once.
"""

from __future__ import annotations

import enum
import math
import ssl
from collections.abc import Callable, Hashable, Sequence
from typing import Final, TypeAlias, TypeVar

import msgspec
import tenacity

from networkpype.protocol.errors import (
    ConfigurationError,
    ConnectionClosedError,
    FatalError,
    GaveUpError,
    HandshakeError,
    MessageTooBigError,
    RetryableError,
    UsageError,
)

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

ChildId = TypeVar("ChildId", bound=Hashable)


# -- classification -----------------------------------------------------------------------------


class Kind(enum.Enum):
    """How a failure is handled: retried after the backoff, after a long cool-off, or never."""

    RETRY = "retry"
    COOL_OFF = "cool_off"
    FATAL = "fatal"


class Verdict(msgspec.Struct, frozen=True):
    """The classification of one failure.

    ``delay_floor`` (seconds) is the least the next restart must wait, e.g. the server's
    ``Retry-After``; ``None`` means no floor from the error itself (a ``COOL_OFF`` verdict then
    waits the policy's ``cool_off``). ``reason`` is one readable line for logs and events.
    """

    kind: Kind
    delay_floor: float | None
    reason: str


_CLOSE_NAMES: Final = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
}
_FATAL_CLOSE_CODES: Final = frozenset({1002, 1003, 1007, 1010})
_COOL_OFF_CLOSE_CODES: Final = frozenset({1008})
_COOL_OFF_STATUSES: Final = frozenset({418, 429})


def classify(error: BaseException) -> Verdict:
    """Classify ``error`` as ``RETRY``, ``COOL_OFF`` or ``FATAL`` (table in the module docstring).

    Pure and total: never raises; an unknown ``Exception`` is ``RETRY``.
    """
    if not isinstance(error, Exception):
        return Verdict(Kind.FATAL, None, f"{type(error).__name__} is not a failure to restart from")
    if _certificate_failure(error):
        return Verdict(Kind.FATAL, None, "TLS certificate verification failed")
    if isinstance(error, GaveUpError):
        return _classify_gave_up(error)
    if isinstance(error, MessageTooBigError):
        return Verdict(Kind.RETRY, None, "a message above max_msg_size; reconnecting")
    if isinstance(error, FatalError | UsageError):
        return Verdict(Kind.FATAL, None, f"{_describe(error)} (retrying cannot fix it)")
    if isinstance(error, ConnectionClosedError):
        return _classify_close(error.code)
    if isinstance(error, HandshakeError):
        return _classify_status(error.status, _seconds_or_none(error.retry_after))
    if isinstance(error, TimeoutError):
        return Verdict(Kind.RETRY, None, f"{type(error).__name__}: timed out (link presumed dead)")
    if isinstance(error, OSError | RetryableError):
        return Verdict(Kind.RETRY, None, f"{type(error).__name__}: network error")
    return Verdict(Kind.RETRY, None, f"unexpected {_describe(error)}; retrying")


def _describe(error: BaseException) -> str:
    """``Type: message`` on one short line, for a verdict's ``reason``."""
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not break classification
        text = ""
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _classify_close(code: int | None) -> Verdict:
    if code is None:
        return Verdict(Kind.RETRY, None, "connection broke without a close code")
    what = f"close code {code}" + (f" ({_CLOSE_NAMES[code]})" if code in _CLOSE_NAMES else "")
    if code in _FATAL_CLOSE_CODES:
        return Verdict(Kind.FATAL, None, f"{what}: would repeat on every connection")
    if code in _COOL_OFF_CLOSE_CODES:
        return Verdict(Kind.COOL_OFF, None, f"{what}: cooling off")
    return Verdict(Kind.RETRY, None, f"{what}: reconnecting")


def _classify_status(status: int, retry_after: float | None) -> Verdict:
    after = "" if retry_after is None else f" (Retry-After {retry_after:g} s)"
    what = f"HTTP {status} on the handshake"
    if status in _COOL_OFF_STATUSES:
        return Verdict(Kind.COOL_OFF, retry_after, f"{what}: rate-limited, cooling off{after}")
    if 400 <= status < 500 and status != 408:
        return Verdict(Kind.FATAL, None, f"{what}: the request itself is refused")
    return Verdict(Kind.RETRY, retry_after, f"{what}: server-side, retrying{after}")


def _classify_gave_up(error: GaveUpError) -> Verdict:
    cause: BaseException | None = error
    seen: set[int] = set()
    while isinstance(cause, GaveUpError) and id(cause) not in seen:
        seen.add(id(cause))
        cause = cause.__cause__
    if cause is None or isinstance(cause, GaveUpError):
        return Verdict(Kind.RETRY, None, "a nested supervisor gave up; restarting it")
    inner = classify(cause)
    return Verdict(inner.kind, inner.delay_floor, f"a nested supervisor gave up: {inner.reason}")


def _certificate_failure(error: BaseException) -> bool:
    """True when a TLS certificate failure is ``error`` or on its explicit ``__cause__`` chain.

    Defensive: the connection translates these to ``CertificateError`` (already fatal), but an
    untranslated aiohttp ``ClientConnectorCertificateError`` is an ``OSError`` and would
    otherwise be retried; it carries the ssl error as ``certificate_error`` and ``__cause__``.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if isinstance(getattr(current, "certificate_error", None), ssl.SSLCertVerificationError):
            return True
        current = current.__cause__
    return False


def _seconds_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, float(value))


# -- backoff ------------------------------------------------------------------------------------

# tenacity's wait strategies read only ``attempt_number`` from the state they are given; one
# Retrying object serves as the (unused) owner of the states built in ``BackoffPolicy.delay``.
_RETRYING: Final = tenacity.Retrying()


class BackoffPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with jitter, computed by tenacity's wait strategies.

    Restart 1 waits 0 s; restart *k* >= 2 waits uniformly in ``[(1 - jitter) * d, d]`` with
    ``d = min(cap, initial * 2 ** (k - 2))`` seconds (``jitter=0`` makes it deterministic).
    ``healthy_after`` (seconds) is how long a restarted child must stay open without a failure
    before the attempt counter resets; opening alone never resets it.
    Raises ``ConfigurationError`` for negative or non-finite values, ``cap < initial`` or a
    ``jitter`` outside ``[0, 1]``.
    """

    initial: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    healthy_after: float = 10.0

    def __post_init__(self) -> None:
        for name in ("initial", "cap", "jitter", "healthy_after"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"BackoffPolicy.{name}={value!r}: need a finite >= 0")
        if self.cap < self.initial:
            raise ConfigurationError(
                f"BackoffPolicy.cap={self.cap!r} is below initial={self.initial!r}"
            )
        if self.jitter > 1:
            raise ConfigurationError(f"BackoffPolicy.jitter={self.jitter!r}: need 0 <= jitter <= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based since the last reset).

        Random within the documented bounds (tenacity draws from the global ``random``; it
        accepts no injected generator). Raises ``ConfigurationError`` if ``attempt < 1``.
        """
        if attempt < 1:
            raise ConfigurationError(f"restart attempt {attempt!r}: attempts count from 1")
        if attempt == 1:
            return 0.0
        steady = 1.0 - self.jitter
        wait = tenacity.wait_exponential(
            multiplier=self.initial * steady, max=self.cap * steady
        ) + tenacity.wait_random_exponential(
            multiplier=self.initial * self.jitter, max=self.cap * self.jitter
        )
        retry_state = tenacity.RetryCallState(_RETRYING, fn=None, args=(), kwargs={})
        retry_state.attempt_number = attempt - 1  # tenacity's attempt 1 -> `initial`
        return min(float(wait(retry_state)), self.cap)  # guard float rounding of the sum


# -- decisions ----------------------------------------------------------------------------------


class Restart(msgspec.Struct, frozen=True):
    """Restart the child after ``delay`` seconds; ``attempt`` counts from 1 since the last
    reset; ``verdict`` says why (log it, put it in the reconnect event)."""

    delay: float
    verdict: Verdict
    attempt: int


class Escalate(msgspec.Struct, frozen=True):
    """Give up on the child and tell the parent: raise ``GaveUpError(reason) from error``
    (``error`` is ``None`` only when a permanent child exited normally too often)."""

    reason: str
    error: BaseException | None


class Ignore(msgspec.Struct, frozen=True):
    """Nothing to restart: a temporary child ended, or a transient one ended normally.
    ``error`` is the failure, if any, to report to the child's owner."""

    reason: str
    error: BaseException | None = None


Decision: TypeAlias = Restart | Escalate | Ignore


# -- restart types and strategies ---------------------------------------------------------------


class RestartType(enum.Enum):
    """OTP restart types."""

    PERMANENT = "permanent"  # restarted after any exit, normal or not
    TRANSIENT = "transient"  # restarted only after a failure; a normal exit ends it
    TEMPORARY = "temporary"  # never restarted; its failure is reported, not escalated


class Strategy(enum.Enum):
    """OTP restart strategies: which children restart when one fails."""

    ONE_FOR_ONE = "one_for_one"  # the failed child only
    ONE_FOR_ALL = "one_for_all"  # every child
    REST_FOR_ONE = "rest_for_one"  # the failed child and those started after it


def children_to_restart(
    strategy: Strategy, children: Sequence[ChildId], failed: ChildId
) -> tuple[ChildId, ...]:
    """The children to restart, in start order, when ``failed`` fails.

    ``children`` are the supervisor's live children in start order. As in OTP, the supervisor
    stops the returned siblings in reverse order and starts them all again in this order (feed
    each sibling :meth:`RestartPolicy.on_sibling_restart`). Raises ``ConfigurationError`` if
    ``failed`` is not in ``children`` or an id repeats.
    """
    if len(set(children)) != len(children):
        raise ConfigurationError(f"child ids must be unique, got {list(children)!r}")
    if failed not in children:
        raise ConfigurationError(f"failed child {failed!r} is not among {list(children)!r}")
    match strategy:
        case Strategy.ONE_FOR_ONE:
            return (failed,)
        case Strategy.ONE_FOR_ALL:
            return tuple(children)
        case Strategy.REST_FOR_ONE:
            return tuple(children[list(children).index(failed) :])


# -- the state machine --------------------------------------------------------------------------


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
        self, state: ChildState, error: BaseException, now: float
    ) -> tuple[Decision, ChildState]:
        """The child failed with ``error`` (any failure is an abnormal exit, a server-sent
        close 1000 included). Fatal errors escalate at once; a temporary child is dropped."""
        _check(state, Event.FAILURE, now)
        verdict = self.classifier(error)
        if self.restart_type is RestartType.TEMPORARY:
            reason = f"temporary child failed, not restarted: {verdict.reason}"
            return Ignore(reason, error), _move(state, Event.FAILURE, _STOP)
        if verdict.kind is Kind.FATAL:
            escalate = Escalate(f"fatal: {verdict.reason}", error)
            return escalate, _move(state, Event.FAILURE, _ESC)
        return self._restart(state, Event.FAILURE, verdict, error, now)

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
        since = state.healthy_since
        if state.phase is _R and since is not None and now - since >= self.backoff.healthy_after:
            return 0
        return state.attempt

    def _restart(
        self,
        state: ChildState,
        event: Event,
        verdict: Verdict,
        error: BaseException | None,
        now: float,
    ) -> tuple[Decision, ChildState]:
        window = tuple(t for t in state.restarts if t >= now - self.within)
        limit = self.max_restarts
        if limit is not None and len(window) + 1 > limit:
            reason = (
                f"{len(window) + 1} restarts within {self.within:g} s would exceed "
                f"max_restarts={limit}; last failure: {verdict.reason}"
            )
            return Escalate(reason, error), _move(state, event, _ESC, restarts=window)
        attempt = self._attempt(state, now) + 1
        floor = verdict.delay_floor
        if floor is None and verdict.kind is Kind.COOL_OFF:
            floor = self.cool_off
        delay = max(self.backoff.delay(attempt), floor or 0.0)
        new = _move(state, event, _S, attempt=attempt, restarts=(*window, now))
        return Restart(delay, verdict, attempt), new
