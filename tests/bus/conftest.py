"""A real nats-server with JetStream on loopback per test (a temporary store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from networkpype.bus.server import LocalNatsServer


@pytest.fixture
def nats_server() -> Iterator[LocalNatsServer]:
    with LocalNatsServer() as server:
        yield server
