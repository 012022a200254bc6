"""Failure classification: ``RETRY``, ``COOL_OFF`` or ``FATAL``, with a delay floor and a reason.

Pure: no I/O, no clock. Part of the supervision policy; import the public names from
:mod:`networkpype.supervisor.policy`, whose docstring has the classification table.
"""

from __future__ import annotations

import enum
import math
import ssl
from typing import Final

import msgspec

from networkpype.protocol.errors import (
    ConnectionClosedError,
    FatalError,
    GaveUpError,
    HandshakeError,
    MessageTooBigError,
    RetryableError,
    UsageError,
)

__all__ = ["Kind", "Verdict", "classify"]


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
# Protocol and data errors from the peer (1002 protocol error, 1003 unsupported data, 1007
# invalid payload, 1010, reserved codes, RSV bits, reserved opcodes: aiohttp reports those as
# 1002/1007) are glitches one healthy venue can produce once: retried with backoff, counted in
# the restart intensity, so only a venue that repeats them is given up on.
_GLITCH_CLOSE_CODES: Final = frozenset({1002, 1003, 1007, 1010})
_COOL_OFF_CLOSE_CODES: Final = frozenset({1008})
_COOL_OFF_STATUSES: Final = frozenset({418, 429})


def classify(error: BaseException) -> Verdict:
    """Classify ``error`` as ``RETRY``, ``COOL_OFF`` or ``FATAL`` (table in ``policy``'s docstring).

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
    if code in _GLITCH_CLOSE_CODES:
        return Verdict(Kind.RETRY, None, f"{what}: protocol or data error; retrying")
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
