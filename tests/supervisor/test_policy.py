"""The supervision policy: pure, no event loop, a fake clock (plain floats)."""

from __future__ import annotations

import ast
import math
import ssl
from pathlib import Path

import aiohttp
import pytest

import networkpype.supervisor as supervisor
from networkpype.protocol.errors import (
    AlreadyConnectedError,
    BlockingCallError,
    CertificateError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectionFailedError,
    GaveUpError,
    HandshakeError,
    HandshakeRejectedError,
    InvalidURLError,
    LivenessTimeoutError,
    MessageTimeoutError,
    MessageTooBigError,
    NotConnectedError,
    ProtocolViolationError,
    UnknownRateLimitError,
    UsageError,
)
from networkpype.supervisor import policy as policy_module
from networkpype.supervisor.policy import (
    BackoffPolicy,
    ChildState,
    Escalate,
    Ignore,
    Kind,
    Phase,
    Restart,
    RestartPolicy,
    RestartType,
    Strategy,
    children_to_restart,
    classify,
)

RETRY, COOL_OFF, FATAL = Kind.RETRY, Kind.COOL_OFF, Kind.FATAL
EXACT = BackoffPolicy(jitter=0.0)  # deterministic delays: 0, 0.5, 1, 2, 4, 8, 16, 30, 30...


def closed(code: int | None) -> ConnectionClosedError:
    return ConnectionClosedError(f"closed {code}", code=code)


def handshake(status: int, retry_after: float | None = None) -> HandshakeError:
    return HandshakeError(f"HTTP {status}", status=status, retry_after=retry_after)


def gave_up(cause: BaseException | None) -> GaveUpError:
    err = GaveUpError("gave up")
    err.__cause__ = cause
    return err


def failed_from(cause: BaseException) -> ConnectionFailedError:
    err = ConnectionFailedError("could not connect")
    err.__cause__ = cause
    return err


class LivenessTimeout(TimeoutError):
    """A half-open detector's own timeout type."""


CERT = ssl.SSLCertVerificationError(1, "certificate verify failed")


# -- classification -----------------------------------------------------------------------------

CASES: list[tuple[str, BaseException, Kind]] = [
    # network errors
    ("ConnectionFailedError", ConnectionFailedError("refused"), RETRY),
    ("OSError", OSError("unreachable"), RETRY),
    ("ConnectionResetError", ConnectionResetError(), RETRY),
    ("aiohttp.ClientOSError", aiohttp.ClientOSError(), RETRY),
    ("aiohttp.ServerDisconnectedError", aiohttp.ServerDisconnectedError(), RETRY),
    ("aiohttp.ClientPayloadError", aiohttp.ClientPayloadError("truncated"), RETRY),
    # close codes
    *[(f"close {c}", closed(c), RETRY) for c in (1000, 1001, 1005, 1006, 1011, 1012, 1013, 1014)],
    *[(f"close {c}", closed(c), RETRY) for c in (4000, 4001, 4500, 4999)],
    ("close without code", closed(None), RETRY),
    ("close 1009 (unlisted)", closed(1009), RETRY),
    ("close 3000 (unlisted)", closed(3000), RETRY),
    ("close 1008", closed(1008), COOL_OFF),
    *[(f"close {c}", closed(c), RETRY) for c in (1002, 1003, 1007, 1010)],  # glitches
    # handshake statuses
    *[(f"HTTP {s}", handshake(s), RETRY) for s in (500, 502, 503, 504, 599, 408, 101)],
    ("HTTP 429", handshake(429), COOL_OFF),
    ("HTTP 418", handshake(418), COOL_OFF),
    *[(f"HTTP {s}", handshake(s), FATAL) for s in (400, 401, 403, 404, 405, 410, 499)],
    *[(f"rejected {s}", HandshakeRejectedError("no", status=s), FATAL) for s in (401, 403, 404)],
    # timeouts and half-open detection
    ("MessageTimeoutError", MessageTimeoutError("silent"), RETRY),
    ("TimeoutError", TimeoutError(), RETRY),
    ("TimeoutError subclass", LivenessTimeout(), RETRY),
    # the FatalError exception
    ("MessageTooBigError", MessageTooBigError("big", size=10, limit=5), RETRY),
    # fatal: local and remote
    ("CertificateError", CertificateError("bad cert"), FATAL),
    ("ssl.SSLCertVerificationError", CERT, FATAL),
    ("aiohttp cert error", aiohttp.ClientConnectorCertificateError(None, CERT), FATAL),  # type: ignore[arg-type]
    ("cert error as __cause__", failed_from(CERT), FATAL),
    ("InvalidURLError", InvalidURLError("ftp://x"), FATAL),
    ("ConfigurationError", ConfigurationError("bad"), FATAL),
    ("UnknownRateLimitError", UnknownRateLimitError("nope"), FATAL),
    ("UsageError", UsageError("no"), FATAL),
    ("AlreadyConnectedError", AlreadyConnectedError(), FATAL),
    ("NotConnectedError", NotConnectedError(), FATAL),
    ("BlockingCallError", BlockingCallError(), FATAL),
    ("KeyboardInterrupt", KeyboardInterrupt(), FATAL),
    # GaveUpError: by its cause
    ("GaveUpError <- 401", gave_up(HandshakeRejectedError("no", status=401)), FATAL),
    ("GaveUpError <- close 1006", gave_up(closed(1006)), RETRY),
    ("GaveUpError <- 429", gave_up(handshake(429)), COOL_OFF),
    ("GaveUpError <- GaveUpError <- cert", gave_up(gave_up(CERT)), FATAL),
    ("GaveUpError without cause", gave_up(None), RETRY),
    # unknown
    ("RuntimeError", RuntimeError("bug?"), RETRY),
    ("ValueError", ValueError("x"), RETRY),
]


@pytest.mark.parametrize(("error", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(error: BaseException, kind: Kind) -> None:
    verdict = classify(error)
    assert verdict.kind is kind
    assert verdict.reason and "\n" not in verdict.reason
    if kind is not COOL_OFF:
        assert verdict.delay_floor is None


def test_classify_retry_after_becomes_the_floor() -> None:
    assert classify(handshake(429, retry_after=12.0)).delay_floor == 12.0
    assert classify(handshake(418, retry_after=3600.0)).delay_floor == 3600.0
    assert classify(handshake(503, retry_after=5.0)) == policy_module.Verdict(
        RETRY, 5.0, "HTTP 503 on the handshake: server-side, retrying (Retry-After 5 s)"
    )
    assert classify(handshake(429)).delay_floor is None
    assert classify(closed(1008)).delay_floor is None
    assert classify(handshake(429, retry_after=math.nan)).delay_floor is None
    assert classify(handshake(429, retry_after=-3.0)).delay_floor == 0.0


def test_classify_survives_a_cause_cycle() -> None:
    a, b = gave_up(None), gave_up(None)
    a.__cause__, b.__cause__ = b, a
    assert classify(a).kind is RETRY
    c = ConnectionFailedError("x")
    c.__cause__ = c
    assert classify(c).kind is RETRY


# -- backoff ------------------------------------------------------------------------------------


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_first_restart_is_immediate(jitter: float) -> None:
    assert BackoffPolicy(jitter=jitter).delay(1) == 0.0


def test_backoff_doubles_from_initial_up_to_cap() -> None:
    delays = [EXACT.delay(k) for k in range(1, 12)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert EXACT.delay(10_000) == 30.0  # no overflow far out
    assert BackoffPolicy(initial=1.0, cap=5.0, jitter=0.0).delay(3) == 2.0
    assert BackoffPolicy(initial=1.0, cap=5.0, jitter=0.0).delay(9) == 5.0


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_jitter_stays_within_bounds_and_varies(jitter: float) -> None:
    backoff = BackoffPolicy(jitter=jitter)
    for attempt in (2, 4, 8, 30, 5000):
        bound = EXACT.delay(attempt)
        samples = [backoff.delay(attempt) for _ in range(100)]
        assert all((1 - jitter) * bound <= s <= bound for s in samples), (attempt, samples)
        assert len(set(samples)) > 50  # really random, not a constant


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1.0},
        {"cap": math.inf},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"healthy_after": math.nan},
        {"initial": 5.0, "cap": 1.0},
    ],
)
def test_backoff_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        BackoffPolicy(**kwargs)


def test_backoff_attempts_count_from_one() -> None:
    with pytest.raises(ConfigurationError, match="attempt 0"):
        EXACT.delay(0)


@pytest.mark.parametrize("kwargs", [{"max_restarts": -1}, {"within": -1.0}, {"cool_off": math.inf}])
def test_restart_policy_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]


# -- the state machine: backoff and reset --------------------------------------------------------

POLICY = RestartPolicy(backoff=EXACT, max_restarts=None)
DROP = closed(1006)


def fail(policy: RestartPolicy, state: ChildState, now: float) -> tuple[Restart, ChildState]:
    decision, state = policy.on_failure(state, DROP, now)
    assert isinstance(decision, Restart), decision
    return decision, state


def test_quick_failures_grow_the_backoff() -> None:
    state, now, delays = ChildState(), 0.0, []
    for _ in range(9):
        decision, state = fail(POLICY, state, now)
        delays.append(decision.delay)
        now += decision.delay + 0.1
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert state.attempt == 9
    assert state.phase is Phase.STARTING


def test_opened_then_failed_quickly_does_not_reset() -> None:
    _, state = fail(POLICY, ChildState(), 0.0)
    _, state = fail(POLICY, state, 1.0)  # attempt 2
    state = POLICY.on_opened(state, 2.0)
    assert state.phase is Phase.RUNNING and state.healthy_since == 2.0
    decision, state = fail(POLICY, state, 2.0 + 9.99)  # open, but not healthy for 10 s
    assert (decision.attempt, decision.delay) == (3, 1.0)
    state = POLICY.on_opened(state, 20.0)
    decision, _ = fail(POLICY, state, 20.0)  # accepted then closed at once
    assert (decision.attempt, decision.delay) == (4, 2.0)


def test_healthy_for_healthy_after_resets_the_counter() -> None:
    state = ChildState()
    for now in (0.0, 1.0, 2.0):
        _, state = fail(POLICY, state, now)
    state = POLICY.on_opened(state, 5.0)
    decision, state = fail(POLICY, state, 15.0)  # exactly healthy_after of health
    assert (decision.attempt, decision.delay) == (1, 0.0)
    assert state.healthy_since is None


def test_healthy_check_resets_only_after_healthy_after() -> None:
    state = ChildState()
    for now in (0.0, 1.0, 2.0):
        _, state = fail(POLICY, state, now)
    state = POLICY.on_opened(state, 5.0)
    assert POLICY.on_healthy_check(state, 14.9).attempt == 3
    checked = POLICY.on_healthy_check(state, 15.0)
    assert checked.attempt == 0 and checked.phase is Phase.RUNNING
    assert checked.healthy_since == 5.0
    starting = fail(POLICY, checked, 16.0)[1]
    assert POLICY.on_healthy_check(starting, 100.0) == starting  # no-op while not open


def test_cool_off_waits_long_or_retry_after_and_never_less_than_backoff() -> None:
    policy = RestartPolicy(backoff=EXACT, max_restarts=None, cool_off=60.0)
    decision, _ = policy.on_failure(ChildState(), handshake(429), 0.0)
    assert isinstance(decision, Restart)
    assert decision.delay == 60.0 and decision.verdict.kind is COOL_OFF
    decision, _ = policy.on_failure(ChildState(), closed(1008), 0.0)
    assert isinstance(decision, Restart) and decision.delay == 60.0
    decision, _ = policy.on_failure(ChildState(), handshake(418, retry_after=7200.0), 0.0)
    assert isinstance(decision, Restart) and decision.delay == 7200.0
    decision, _ = policy.on_failure(ChildState(), handshake(429, retry_after=5.0), 0.0)
    assert isinstance(decision, Restart) and decision.delay == 5.0  # the server's word
    # deep into the backoff, a short Retry-After does not shorten the backoff's 30 s ...
    state = ChildState()
    for now in range(10):
        _, state = fail(policy, state, float(now))
    decision, state = policy.on_failure(state, handshake(429, retry_after=5.0), 10.0)
    assert isinstance(decision, Restart) and decision.delay == 30.0
    # ... and the backoff's 30 s does not shorten a cool-off
    decision, _ = policy.on_failure(state, handshake(429), 11.0)
    assert isinstance(decision, Restart) and decision.delay == 60.0
    decision, _ = policy.on_failure(state, handshake(503, retry_after=45.0), 11.0)
    assert isinstance(decision, Restart) and decision.delay == 45.0


# -- restart intensity --------------------------------------------------------------------------


def test_the_restart_past_the_limit_escalates() -> None:
    policy = RestartPolicy(backoff=EXACT, max_restarts=3, within=10.0)
    state = ChildState()
    for now in (0.0, 1.0, 2.0):
        _, state = fail(policy, state, now)
    decision, state = policy.on_failure(state, DROP, 9.9)
    assert isinstance(decision, Escalate) and decision.error is DROP
    assert "4 restarts within 10 s" in decision.reason and "max_restarts=3" in decision.reason
    assert state.phase is Phase.ESCALATED


def test_restarts_spread_wider_than_the_window_never_escalate() -> None:
    policy = RestartPolicy(backoff=EXACT, max_restarts=3, within=10.0)
    state = ChildState()
    for i in range(50):
        _, state = fail(policy, state, i * 3.4)  # 3 restarts span 6.8 s; a 4th is 10.2 s on
    assert len(state.restarts) == 3


def test_a_restart_exactly_within_ago_still_counts() -> None:
    policy = RestartPolicy(backoff=EXACT, max_restarts=2, within=10.0)
    _, state = fail(policy, ChildState(), 0.0)
    _, state = fail(policy, state, 5.0)
    decision, _ = policy.on_failure(state, DROP, 10.0)  # OTP: Now - Then =< Period
    assert isinstance(decision, Escalate)
    decision, _ = policy.on_failure(state, DROP, 10.001)
    assert isinstance(decision, Restart)


def test_max_restarts_none_never_gives_up_and_zero_gives_up_at_once() -> None:
    state = ChildState()
    for i in range(1000):
        _, state = fail(POLICY, state, i * 0.001)
    zero = RestartPolicy(max_restarts=0)
    assert isinstance(zero.on_failure(ChildState(), DROP, 0.0)[0], Escalate)


@pytest.mark.parametrize(
    "error",
    [HandshakeRejectedError("no", status=401), CertificateError("x"), InvalidURLError("x")],
)
def test_fatal_escalates_at_once_whatever_the_intensity(error: BaseException) -> None:
    decision, state = POLICY.on_failure(ChildState(), error, 0.0)
    assert isinstance(decision, Escalate) and decision.error is error
    assert decision.reason.startswith("fatal: ")
    assert state.phase is Phase.ESCALATED


def test_defaults_escalate_a_continuous_outage_in_the_documented_time() -> None:
    policy = RestartPolicy()
    for _ in range(20):  # jitter is random: check the documented bounds repeatedly
        state, now, failures = ChildState(), 0.0, 0
        while True:
            decision, state = policy.on_failure(state, DROP, now)
            failures += 1
            if isinstance(decision, Escalate):
                break
            assert isinstance(decision, Restart)
            now += decision.delay  # every attempt fails at once
        assert failures == 16
        assert 135.75 <= now <= 271.5


@pytest.mark.parametrize("attempt_time", [0.0, 30.0, 41.0])
def test_defaults_escalate_even_when_every_attempt_hangs(attempt_time: float) -> None:
    policy = RestartPolicy(backoff=BackoffPolicy(jitter=0.0))  # worst case: full delays
    state, now, failures = ChildState(), 0.0, 0
    while failures < 100:
        decision, state = policy.on_failure(state, DROP, now)
        failures += 1
        if isinstance(decision, Escalate):
            break
        assert isinstance(decision, Restart)
        now += decision.delay + attempt_time  # e.g. a connect timeout on every attempt
    assert failures == 16
    assert now == 271.5 + 15 * attempt_time  # the module docstring's arithmetic


# -- a connection that served data (issue 9, items 4 and 5) ---------------------------------------


def test_a_served_connection_restarts_at_once_and_is_not_counted() -> None:
    state = ChildState()
    for now in (0.0, 1.0, 2.0):  # three failed dials: attempt 3, three restarts counted
        _, state = fail(POLICY, state, now)
    state = POLICY.on_opened(state, 3.0)
    decision, state = POLICY.on_failure(state, DROP, 3.2, served=True)  # data 200 ms, then RST
    assert isinstance(decision, Restart)
    assert (decision.attempt, decision.delay) == (1, 0.0)
    assert state.restarts == (0.0, 1.0, 2.0)  # this restart is not one of a crash loop
    decision, state = fail(POLICY, state, 3.3)  # the redial itself fails: backoff from 2
    assert (decision.attempt, decision.delay) == (2, 0.5)


def test_served_connections_never_escalate_and_failed_dials_still_do() -> None:
    policy = RestartPolicy(max_restarts=2, within=60.0, backoff=EXACT)
    state, now = ChildState(), 0.0
    for _ in range(10):  # served, dropped, restarted at once: forever
        state = policy.on_opened(state, now)
        decision, state = policy.on_failure(state, DROP, now + 0.05, served=True)
        assert isinstance(decision, Restart) and decision.delay == 0.0
        now += 0.1
    for expected in (Restart, Restart, Escalate):  # then dials that never open: a crash loop
        decision, state = policy.on_failure(state, DROP, now)
        assert isinstance(decision, expected)
        now += 0.1


@pytest.mark.parametrize(
    "ended",
    [closed(1011), closed(1000), ProtocolViolationError("bad frame", code=1007)],
    ids=["close-1011", "close-1000", "violation-1007"],
)
def test_a_venue_that_answers_then_closes_is_backed_off_but_never_given_up_on(
    ended: ConnectionClosedError,
) -> None:
    # Each connection opens, its subscription is answered (data after the replay: served),
    # then the venue closes it itself: the restarts are not counted, but the backoff grows,
    # so the venue is not redialled in a tight loop.
    policy = RestartPolicy(backoff=EXACT)  # max_restarts=15 within 900 s, as by default
    state, now, delays = ChildState(), 0.0, []
    for _ in range(40):
        state = policy.on_opened(state, now)
        now += 0.05
        decision, state = policy.on_failure(state, ended, now, served=True)
        assert isinstance(decision, Restart), decision
        delays.append(decision.delay)
        now += decision.delay
    assert delays[:8] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert state.restarts == ()
    # A connection then healthy for healthy_after, ended the same way: at once again.
    state = policy.on_opened(state, now)
    decision, state = policy.on_failure(state, ended, now + 10.0, served=True)
    assert isinstance(decision, Restart) and decision.delay == 0.0


def test_a_served_connection_whose_link_breaks_restarts_at_once_however_often() -> None:
    state, now = ChildState(), 0.0
    for failure in (DROP, LivenessTimeoutError("no pong"), DROP, DROP):
        state = POLICY.on_opened(state, now)
        decision, state = POLICY.on_failure(state, failure, now + 0.01, served=True)
        assert isinstance(decision, Restart) and decision.delay == 0.0
        now += 0.02


def test_a_served_connection_still_honours_a_cool_off() -> None:
    state = POLICY.on_opened(ChildState(), 0.0)
    decision, _ = POLICY.on_failure(state, closed(1008), 1.0, served=True)
    assert isinstance(decision, Restart) and decision.delay >= 60.0


@pytest.mark.parametrize("served", [True, False], ids=["served-data", "open-30s"])
def test_defaults_a_week_of_drops_every_30_s_never_gives_up(served: bool) -> None:
    policy = RestartPolicy()
    state, now, restarts = ChildState(), 0.0, 0
    week = 7 * 24 * 3600.0
    while now < week:
        state = policy.on_opened(state, now)
        now += 30.0  # healthy for 30 s (and, when served, delivering data), then dropped
        decision, state = policy.on_failure(state, DROP, now, served=served)
        assert isinstance(decision, Restart), f"gave up after {now / 3600:.1f} h: {decision}"
        assert decision.delay == 0.0
        restarts += 1
    assert restarts == 20_160
    assert state.restarts == ()  # nothing counted towards giving up


def test_defaults_accept_then_close_gets_at_most_10_attempts_in_the_first_minute() -> None:
    policy = RestartPolicy()
    for _ in range(200):  # jitter is random: the bound must hold for every draw
        state, now, attempts = ChildState(), 0.0, 1  # the first dial at t=0
        while True:
            state = policy.on_opened(state, now)  # accepted...
            decision, state = policy.on_failure(state, closed(1000), now)  # ...closed at once
            assert isinstance(decision, Restart)
            now += decision.delay
            if now >= 60.0:
                break
            attempts += 1
        assert attempts <= 10


def test_defaults_keep_cooling_off_without_escalating() -> None:
    policy = RestartPolicy()
    state, now = ChildState(), 0.0
    for _ in range(100):
        decision, state = policy.on_failure(state, handshake(429), now)
        assert isinstance(decision, Restart) and decision.delay >= 60.0
        now += decision.delay + 0.01


# -- restart types ------------------------------------------------------------------------------


def test_permanent_restarts_after_a_normal_exit_and_counts_it() -> None:
    policy = RestartPolicy(backoff=EXACT, max_restarts=1, within=60.0)
    decision, state = policy.on_normal_exit(ChildState(), 0.0)
    assert isinstance(decision, Restart) and decision.verdict.kind is RETRY
    decision, state = policy.on_normal_exit(state, 1.0)
    assert isinstance(decision, Escalate) and decision.error is None


def test_transient_restarts_only_after_an_abnormal_exit() -> None:
    policy = RestartPolicy(restart_type=RestartType.TRANSIENT)
    decision, state = policy.on_failure(ChildState(), closed(1000), 0.0)  # closed by the server
    assert isinstance(decision, Restart)
    state = policy.on_opened(state, 1.0)
    decision, state = policy.on_normal_exit(state, 2.0)  # we closed it / the user stopped it
    assert isinstance(decision, Ignore) and state.phase is Phase.STOPPED
    decision, _ = policy.on_failure(ChildState(), CertificateError("x"), 0.0)
    assert isinstance(decision, Escalate)


@pytest.mark.parametrize("error", [closed(1006), CertificateError("x")])
def test_temporary_is_never_restarted_but_its_failure_is_reported(error: BaseException) -> None:
    policy = RestartPolicy(restart_type=RestartType.TEMPORARY)
    decision, state = policy.on_failure(ChildState(), error, 0.0)
    assert isinstance(decision, Ignore) and decision.error is error
    assert state.phase is Phase.STOPPED
    decision, _ = policy.on_normal_exit(ChildState(), 0.0)
    assert isinstance(decision, Ignore) and decision.error is None


def test_sibling_restart_does_not_count_as_a_failure() -> None:
    policy = RestartPolicy(backoff=EXACT, max_restarts=1)
    state = policy.on_opened(ChildState(), 0.0)
    decision, state = policy.on_sibling_restart(state, 1.0)
    assert isinstance(decision, Restart) and decision.delay == 0.0
    assert (state.phase, state.attempt, state.restarts) == (Phase.STARTING, 0, ())
    temporary = RestartPolicy(restart_type=RestartType.TEMPORARY)
    decision, state = temporary.on_sibling_restart(ChildState(), 1.0)
    assert isinstance(decision, Ignore) and state.phase is Phase.STOPPED


# -- illegal transitions ------------------------------------------------------------------------


def test_illegal_events_name_the_state_and_the_event() -> None:
    running = POLICY.on_opened(ChildState(), 0.0)
    with pytest.raises(UsageError, match=r"'opened' in state 'running'"):
        POLICY.on_opened(running, 1.0)
    _, escalated = POLICY.on_failure(ChildState(), CertificateError("x"), 0.0)
    with pytest.raises(UsageError, match=r"'failure' in state 'escalated'.*fresh ChildState"):
        POLICY.on_failure(escalated, DROP, 1.0)
    _, stopped = RestartPolicy(restart_type=RestartType.TEMPORARY).on_failure(
        ChildState(), DROP, 0.0
    )
    for call in (
        lambda: POLICY.on_opened(stopped, 1.0),
        lambda: POLICY.on_healthy_check(stopped, 1.0),
        lambda: POLICY.on_normal_exit(stopped, 1.0),
        lambda: POLICY.on_sibling_restart(stopped, 1.0),
    ):
        with pytest.raises(UsageError, match="in state 'stopped'"):
            call()


def test_a_clock_going_backwards_is_refused() -> None:
    _, state = fail(POLICY, ChildState(), 10.0)
    with pytest.raises(UsageError, match="monotonic"):
        POLICY.on_failure(state, DROP, 9.0)
    with pytest.raises(UsageError, match="monotonic"):
        POLICY.on_opened(state, math.nan)


# -- strategies ---------------------------------------------------------------------------------

CHILDREN = ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        (Strategy.ONE_FOR_ONE, "b", ("b",)),
        (Strategy.ONE_FOR_ALL, "b", CHILDREN),
        (Strategy.ONE_FOR_ALL, "d", CHILDREN),
        (Strategy.REST_FOR_ONE, "b", ("b", "c", "d")),
        (Strategy.REST_FOR_ONE, "a", CHILDREN),
        (Strategy.REST_FOR_ONE, "d", ("d",)),
    ],
)
def test_strategies(strategy: Strategy, failed: str, expected: tuple[str, ...]) -> None:
    assert children_to_restart(strategy, CHILDREN, failed) == expected
    assert children_to_restart(strategy, list(CHILDREN), failed) == expected


def test_strategy_rejects_unknown_or_duplicate_children() -> None:
    with pytest.raises(ConfigurationError, match="'z'"):
        children_to_restart(Strategy.ONE_FOR_ONE, CHILDREN, "z")
    with pytest.raises(ConfigurationError, match="unique"):
        children_to_restart(Strategy.ONE_FOR_ALL, ("a", "a"), "a")


# -- purity and exports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", ["policy.py", "_classify.py", "_backoff.py", "_decisions.py", "_strategy.py"]
)
def test_policy_imports_no_io(module: str) -> None:
    tree = ast.parse((Path(policy_module.__file__).parent / module).read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert not imported & {"asyncio", "aiohttp", "pykka", "time", "socket"}


def test_exports() -> None:
    assert sorted(supervisor.__all__) == sorted(policy_module.__all__)
    for name in supervisor.__all__:
        assert getattr(supervisor, name) is getattr(policy_module, name)


def test_fatal_reason_carries_the_error_message_on_one_line() -> None:
    error = HandshakeRejectedError("wss://x: HTTP 401\ncheck the API key", status=401)
    assert classify(error).reason == (
        "HandshakeRejectedError: wss://x: HTTP 401 (retrying cannot fix it)"
    )

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert classify(Unprintable()).reason == "unexpected Unprintable; retrying"
