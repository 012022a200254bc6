"""Loopback servers and fault proxies for tests: yours and networkpype's own.

* :class:`ScriptedServer` (:mod:`~networkpype.testing.scripted`): a WebSocket server the test
  drives peer by peer: push any frame, close with any code, refuse handshakes with a status.
* :class:`RawServer` (:mod:`~networkpype.testing.raw`): a TCP peer that answers raw bytes (a
  garbage handshake reply) or closes at once.
* :class:`StallGate` (:mod:`~networkpype.testing.stall`): a TCP peer that accepts and never
  answers, recording when the client lets go; or forwards to a real server until told to hang.
* :class:`FaultProxy` (:mod:`~networkpype.testing.faults`): a TCP proxy in front of any server
  that resets, blackholes, stalls, delays, throttles or refuses connections on demand;
  :class:`ChaosSchedule` plays a seeded, reproducible sequence of those faults.

A simulated venue (a market data exchange, Binance-like limits, order books) is
:mod:`networkpype.demo`, which the CLI's demo runs. The two packages import neither each other
nor the client they test: nothing of networkpype beyond :mod:`networkpype.protocol`.
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
from networkpype.testing.raw import RawServer, raw_server
from networkpype.testing.scripted import Peer, ScriptedServer, scripted_server
from networkpype.testing.stall import Held, StallGate, stall_gate

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
    "Held",
    "Latency",
    "Peer",
    "ProxyState",
    "RawServer",
    "RefuseNew",
    "Reset",
    "ScriptedServer",
    "Stall",
    "StallGate",
    "random_events",
    "raw_server",
    "scripted_server",
    "stall_gate",
]
