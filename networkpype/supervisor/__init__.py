"""Supervision: the pure restart policy (``policy``) and the supervisor actor that applies it."""

from networkpype.supervisor.policy import (
    BackoffPolicy,
    ChildState,
    Decision,
    Escalate,
    Event,
    Ignore,
    Kind,
    Phase,
    Restart,
    RestartPolicy,
    RestartType,
    Strategy,
    Verdict,
    children_to_restart,
    classify,
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
