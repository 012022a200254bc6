"""Test helpers that ship with networkpype: a loopback fault-injecting TCP proxy.

:class:`FaultProxy` sits between a client and a loopback server and resets, blackholes,
stalls, delays, throttles or refuses connections on demand; :class:`ChaosSchedule` plays a
seeded, reproducible sequence of those faults. See :mod:`networkpype.testing.faults`.
"""

from networkpype.testing.chaos import (
    DEFAULT_KINDS,
    Bandwidth,
    Blackhole,
    ChaosEvent,
    ChaosSchedule,
    Fault,
    FaultKind,
    Heal,
    Latency,
    RefuseNew,
    Reset,
    Stall,
    random_events,
)
from networkpype.testing.faults import (
    ConnectionInfo,
    FaultProxy,
    FaultProxyStatistics,
    ProxyState,
)

__all__ = [
    "DEFAULT_KINDS",
    "Bandwidth",
    "Blackhole",
    "ChaosEvent",
    "ChaosSchedule",
    "ConnectionInfo",
    "Fault",
    "FaultKind",
    "FaultProxy",
    "FaultProxyStatistics",
    "Heal",
    "Latency",
    "ProxyState",
    "RefuseNew",
    "Reset",
    "Stall",
    "random_events",
]
