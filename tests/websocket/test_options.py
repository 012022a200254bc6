"""The options objects: each setting's default is defined once, on its options object, and the
seed's keyword signatures are adapters whose defaults can never drift from it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_args

import msgspec
import pytest

from networkpype.embedding import SyncNetworkPype, SyncShardedNetworkPype
from networkpype.facade import NetworkPype
from networkpype.factory import ConnectionManagersFactory
from networkpype.protocol.errors import ConfigurationError
from networkpype.protocol.messages import ConnectionSpec
from networkpype.protocol.options import (
    GAVE_UP_POLICIES,
    OVERFLOW_POLICIES,
    ConnectionOptions,
    OnGaveUp,
    Overflow,
)
from networkpype.throttler.throttler import AsyncThrottler
from networkpype.websocket.manager import WebSocketManager, connection_options
from networkpype.websocket.options import ManagerOptions, ShardedOptions
from networkpype.websocket.request import WebSocketJSONRequest
from networkpype.websocket.sharded import ShardedWebSocketManager

# Every keyword signature that adapts to an options object, with the object.
ADAPTERS: list[tuple[Callable[..., Any], type[msgspec.Struct]]] = [
    (WebSocketManager.__init__, ManagerOptions),
    (ConnectionManagersFactory.get_ws_manager, ManagerOptions),
    (SyncNetworkPype.__init__, ManagerOptions),
    (ShardedWebSocketManager.__init__, ShardedOptions),
    (ConnectionManagersFactory.get_sharded_ws_manager, ShardedOptions),
    (SyncShardedNetworkPype.__init__, ShardedOptions),
]


def _defaults(function: Callable[..., Any]) -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize(
    ("adapter", "options"), ADAPTERS, ids=[a.__qualname__ for a, _ in ADAPTERS]
)
def test_a_keyword_default_is_the_options_default(
    adapter: Callable[..., Any], options: type[msgspec.Struct]
) -> None:
    fields = msgspec.structs.asdict(options())
    keywords = _defaults(adapter)
    shared = {name for name in keywords if name in fields}
    assert len(shared) >= 6, shared
    for name in shared:
        assert keywords[name] == fields[name], f"{adapter.__qualname__}({name})"
        assert type(keywords[name]) is type(fields[name]), f"{adapter.__qualname__}({name})"
    assert keywords["options"] is None


def test_connect_keywords_are_connection_options_keywords() -> None:
    connect = inspect.signature(WebSocketManager.connect).parameters
    adapter = inspect.signature(connection_options).parameters
    seed = [(name, p.default) for name, p in connect.items() if name not in ("retry", "options")]
    assert seed[2:] == [(name, p.default) for name, p in adapter.items()]
    # The seed's own five first, as shared/API.md has them (an int 10, as the seed wrote it).
    assert seed[:6] == [
        ("self", inspect.Parameter.empty),
        ("ws_url", inspect.Parameter.empty),
        ("ping_timeout", 10),
        ("auto_ping", False),
        ("message_timeout", None),
        ("ws_headers", None),
    ]
    assert type(connect["ping_timeout"].default) is int


def test_the_seed_keywords_left_alone_give_the_default_options() -> None:
    assert connection_options() == ConnectionOptions()
    spec = ConnectionSpec.of("wss://venue/ws", connection_options())
    assert spec.url == "wss://venue/ws"
    assert msgspec.structs.asdict(spec) == {
        **msgspec.structs.asdict(ConnectionOptions()),
        "url": "wss://venue/ws",
    }


def test_ping_timeout_is_the_default_of_both_liveness_settings() -> None:
    assert connection_options(ping_timeout=30) == ConnectionOptions(
        ping_interval=30, pong_timeout=30
    )
    assert connection_options(ping_timeout=0).ping_interval is None
    assert connection_options(ping_timeout=0, ping_interval=5).pong_timeout == 5
    assert connection_options(ping_interval=2, pong_timeout=3) == ConnectionOptions(
        ping_interval=2, pong_timeout=3
    )


def test_the_enumerated_values_are_the_literal_types() -> None:
    assert OVERFLOW_POLICIES == ("block", "drop_oldest", "error") == get_args(Overflow)
    assert GAVE_UP_POLICIES == ("continue", "stop") == get_args(OnGaveUp)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ManagerOptions(max_queue=0), "max_queue must be at least 1, got 0"),
        (
            lambda: ManagerOptions(overflow="drop"),  # type: ignore[arg-type]
            "overflow='drop': use one of block, ",
        ),
        (
            lambda: ShardedOptions(overflow="x"),  # type: ignore[arg-type]
            "overflow='x'",
        ),
        (
            lambda: ShardedOptions(on_shard_gave_up="ignore"),  # type: ignore[arg-type]
            "use one of continue, stop",
        ),
        (lambda: ShardedOptions(max_topics_per_connection=0), "max_topics_per_connection"),
        (lambda: ShardedOptions(min_send_interval=0), "min_send_interval"),
        (lambda: ShardedOptions(ack_timeout=0), "ack_timeout"),
        (lambda: ShardedOptions(rotation_stagger=-1), "rotation_stagger"),
        (lambda: ShardedOptions(rotation_overlap=float("inf")), "rotation_overlap"),
        (lambda: ShardedOptions(max_age=0), "max_age"),
        (lambda: ShardedOptions(max_connection_attempts=(0, 1.0)), "number of attempts"),
        (
            lambda: ShardedOptions(max_connection_attempts=5),  # type: ignore[arg-type]
            "(attempts, window_seconds)",
        ),
        (lambda: ConnectionOptions(compress=8), "compress=8"),
    ],
)
def test_a_bad_setting_is_refused_when_the_options_are_made(
    make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_connection_options_normalise_compress_and_headers() -> None:
    options = ConnectionOptions(compress=True, headers={"X-Id": 7})  # type: ignore[dict-item]
    assert options.compress == 15 and options.headers == {"X-Id": "7"}
    assert ConnectionOptions(compress=False).compress == 0
    # Idempotent: rebuilding (a spec, a replace) keeps the normalised values.
    assert ConnectionSpec.of("ws://h/", options).compress == 15


async def test_a_setting_given_both_ways_is_refused() -> None:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([]))
    try:
        with pytest.raises(ConfigurationError, match=r"get_ws_manager\(\): max_queue given both"):
            await factory.get_ws_manager(max_queue=5, options=ManagerOptions(max_queue=5))
        with pytest.raises(ConfigurationError, match=r"on_shard_gave_up given both"):
            await factory.get_sharded_ws_manager(on_shard_gave_up="stop", options=ShardedOptions())
        manager = await factory.get_ws_manager()
        with pytest.raises(ConfigurationError, match=r"connect\(\): ping_interval given both"):
            await manager.connect("ws://127.0.0.1:9/", ping_interval=1, options=ConnectionOptions())
        sharded = await factory.get_sharded_ws_manager()
        with pytest.raises(TypeError, match="unexpected keyword argument 'ping'"):
            await sharded.connect("ws://127.0.0.1:9/", ping=1, options=ConnectionOptions())
        with pytest.raises(TypeError):
            await sharded.connect("ws://127.0.0.1:9/", ping=1)
    finally:
        await factory.close()


async def test_options_given_whole_configure_the_manager_and_its_connection(
    echo_server: Any,
) -> None:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([]))
    options = ManagerOptions(max_queue=3, overflow="drop_oldest")
    try:
        manager = await factory.get_ws_manager(options=options)
        assert manager.options is options
        await manager.connect(
            echo_server.url,
            options=ConnectionOptions(headers={"X-Venue-Key": "k1"}, ping_interval=None),
        )
        peer = await echo_server.wait_peer()
        assert peer.headers["X-Venue-Key"] == "k1"
        await manager.send(WebSocketJSONRequest(payload={"n": 1}))
        response = await manager.receive()
        assert response is not None and response.data == {"n": 1}
    finally:
        await factory.close()


async def test_the_keywords_build_the_same_options() -> None:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([]))
    try:
        manager = await factory.get_ws_manager(max_queue=3, overflow="drop_oldest")
        assert manager.options == ManagerOptions(max_queue=3, overflow="drop_oldest")
        sharded = await factory.get_sharded_ws_manager(max_topics_per_connection=7, max_age=60.0)
        assert sharded.options.max_topics_per_connection == 7
        assert sharded.options.max_age == 60.0
        assert sharded.options.ack_timeout == ShardedOptions().ack_timeout
    finally:
        await factory.close()


async def test_sharded_options_reach_what_the_factory_has_no_keyword_for() -> None:
    factory = ConnectionManagersFactory(throttler=AsyncThrottler([]))
    try:
        sharded = await factory.get_sharded_ws_manager(options=ShardedOptions(ack_timeout=2.5))
        assert sharded.options.ack_timeout == 2.5
        assert sharded._ack_timeout == 2.5
    finally:
        await factory.close()


async def test_the_facade_passes_options_to_its_manager() -> None:
    options = ManagerOptions(max_queue=7, overflow="error")
    async with NetworkPype(options=options) as pype:
        assert pype.ws_manager.options is options


def test_the_blocking_facades_give_their_managers_the_options() -> None:
    options = ManagerOptions(max_queue=7)
    with SyncNetworkPype(options=options, own_loop_thread=True) as pype:
        assert pype.manager.options is options
    with SyncShardedNetworkPype(max_topics_per_connection=3, own_loop_thread=True) as sharded:
        assert sharded.manager.options.max_topics_per_connection == 3
        assert sharded.manager.options.on_escalate is not None  # the facade's own hook
    with pytest.raises(ConfigurationError, match="max_queue given both"):
        SyncNetworkPype(max_queue=3, options=options)
