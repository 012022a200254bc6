"""The supervision decisions: ``Restart``, ``Escalate`` or ``Ignore`` a child that exited.

Part of the supervision policy; import them from :mod:`networkpype.supervisor.policy`.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from networkpype.supervisor._classify import Verdict

__all__ = ["Decision", "Escalate", "Ignore", "Restart"]


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
