"""Package-level contracts: the seed's import paths, pure protocol, exports, py.typed."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import networkpype

# Every name of shared/API.md (WebSocket, Authentication, Throttling, Time, factories, REST)
# at its import path.
SEED_API = {
    "networkpype.websocket.connection": ["WebSocketConnection"],
    "networkpype.websocket.request": [
        "WebSocketRequest",
        "WebSocketJSONRequest",
        "WebSocketPlainTextRequest",
    ],
    "networkpype.websocket.response": ["WebSocketResponse"],
    "networkpype.websocket.processor.base": ["WebSocketPreProcessor", "WebSocketPostProcessor"],
    "networkpype.websocket.manager": ["WebSocketManager"],
    "networkpype.factory": ["ConnectionManagersFactory", "ConnectionsFactory"],
    "networkpype.auth": ["Auth"],
    "networkpype.throttler.rate_limit": ["RateLimit", "LinkedLimitWeightPair", "TaskLog"],
    "networkpype.throttler.throttler": ["AsyncThrottler"],
    "networkpype.time_synchronizer": ["TimeSynchronizer"],
    "networkpype.rest.method": ["RESTMethod"],
    "networkpype.rest.request": ["RESTRequest"],
    "networkpype.rest.response": ["RESTResponse"],
    "networkpype.rest.connection": ["RESTConnection"],
    "networkpype.rest.processor.base": ["RESTPreProcessor", "RESTPostProcessor"],
    "networkpype.rest.processor.time_synchronizer": ["TimeSynchronizerRESTPreProcessor"],
    "networkpype.rest.manager": ["RESTManager"],
}


@pytest.mark.parametrize("module", sorted(SEED_API))
def test_seed_names_at_their_import_paths(module: str) -> None:
    mod = importlib.import_module(module)
    for name in SEED_API[module]:
        assert hasattr(mod, name), f"{module}.{name} is missing"


def test_seed_signatures_and_defaults() -> None:
    from networkpype.factory import ConnectionManagersFactory
    from networkpype.throttler.throttler import AsyncThrottler
    from networkpype.websocket.connection import WebSocketConnection
    from networkpype.websocket.manager import WebSocketManager

    connect = inspect.signature(WebSocketConnection.connect).parameters
    # The seed's parameters, in its order; what was added since is keyword-only.
    assert [n for n, p in connect.items() if p.kind is p.KEYWORD_ONLY] == ["compress"]
    assert [(n, p.default) for n, p in connect.items() if p.kind is not p.KEYWORD_ONLY][1:] == [
        ("ws_url", inspect.Parameter.empty),
        ("ping_timeout", 10),
        ("auto_ping", False),
        ("message_timeout", None),
        ("ws_headers", None),
        ("verify_ssl", True),
    ]
    manager_connect = inspect.signature(WebSocketManager.connect).parameters
    for name, default in [("ping_timeout", 10), ("auto_ping", False), ("message_timeout", None),
                          ("ws_headers", None), ("verify_ssl", True)]:  # fmt: skip
        assert manager_connect[name].default == default
    throttler = inspect.signature(AsyncThrottler).parameters
    assert throttler["retry_interval"].default == 0.1
    assert throttler["safety_margin_pct"].default == 0.05
    assert throttler["limits_share_percentage"].default is None
    factory = inspect.signature(ConnectionManagersFactory).parameters
    assert list(factory)[:7] == [
        "throttler", "auth", "rest_pre_processors", "rest_post_processors",
        "ws_pre_processors", "ws_post_processors", "time_synchronizer",
    ]  # fmt: skip


def test_protocol_is_pure() -> None:
    code = (
        "import sys, networkpype.protocol;"
        "bad = [m for m in ('asyncio', 'aiohttp', 'pykka') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"networkpype.protocol imports {out.stdout.strip()}"


def test_errors_promised_by_the_seed_are_builtins_too() -> None:
    from networkpype.protocol import errors

    assert issubclass(errors.ConnectionClosedError, ConnectionError)
    assert issubclass(errors.GaveUpError, ConnectionError)
    assert issubclass(errors.MessageTimeoutError, TimeoutError)
    assert issubclass(errors.UnknownRateLimitError, KeyError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.NetworkPypeError)


def test_every_all_name_exists_and_py_typed_ships() -> None:
    root = Path(networkpype.__file__).parent
    assert (root / "py.typed").exists()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name.endswith("__main__"):
            continue
        mod = importlib.import_module(name)
        for exported in getattr(mod, "__all__", []):
            assert hasattr(mod, exported), f"{name}.__all__ names missing {exported}"
