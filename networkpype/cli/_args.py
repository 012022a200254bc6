"""Argument parsing shared by the commands: one-line errors (exit status 2) and the value
types, each rejecting what it cannot use with a message naming the value."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

import msgspec

__all__ = [
    "ArgumentParser",
    "header",
    "json_object",
    "non_negative_seconds",
    "positive_int",
    "seconds",
    "ws_url",
]

MAX_SECONDS = 86_400.0
"""The largest duration or interval any option accepts (one day): a typo, not a plan."""


class ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that reports a bad argument on one line, not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def seconds(
    low: float = 0.0, high: float = MAX_SECONDS, *, low_inclusive: bool = False
) -> Callable[[str], float]:
    """A type: seconds in ``(low, high]`` (``[low, high]`` with ``low_inclusive``)."""

    def parse(text: str) -> float:
        value = _number(text)
        if low_inclusive and not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be at least {low:g} and at most {high:g} seconds, not {text}"
            )
        if not low_inclusive and not low < value <= high:
            raise argparse.ArgumentTypeError(
                f"must be more than {low:g} and at most {high:g} seconds, not {text}"
            )
        return value

    return parse


def non_negative_seconds(text: str) -> float:
    """A type: seconds, 0 allowed (0 turns the feature off)."""
    value = _number(text)
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be within [0, {MAX_SECONDS:g}] seconds, not {text}")
    return value


def positive_int(text: str) -> int:
    """A type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def ws_url(text: str) -> str:
    """A type: a ``ws://`` or ``wss://`` URL with a host (what the library accepts)."""
    from networkpype.protocol.errors import InvalidURLError
    from networkpype.protocol.redaction import redact_url
    from networkpype.wire.connection import check_ws_url

    try:
        parsed = check_ws_url(text)
    except InvalidURLError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if parsed.scheme not in ("ws", "wss"):
        raise argparse.ArgumentTypeError(
            f"{redact_url(text)!r} is not a WebSocket URL: use ws:// or wss://"
        )
    return text


def json_object(text: str) -> dict[str, Any]:
    """A type: a JSON object (a subscription request)."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def header(text: str) -> tuple[str, str]:
    """A type: ``Name:value`` (an HTTP header of the opening handshake)."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(c.isspace() for c in name):
        # Not echoed: what was meant as a header may be a credential.
        raise argparse.ArgumentTypeError("not a header Name:value (its text is not shown)")
    return name, value.strip()
