"""OTP restart types (which exits restart a child) and strategies (which siblings restart).

Pure. Part of the supervision policy; import them from :mod:`networkpype.supervisor.policy`.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from typing import TypeVar

from networkpype.protocol.errors import ConfigurationError

__all__ = ["RestartType", "Strategy", "children_to_restart"]

ChildId = TypeVar("ChildId", bound=Hashable)


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
