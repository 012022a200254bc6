"""The library's actors (connection, manager, throttler), on :mod:`networkpype.runtime`.

The runtime's names are re-exported here for code written before it had a package of its
own (``from networkpype.actors import stop_actor`` keeps working)."""

from networkpype.runtime import (
    AsyncioActor,
    AsyncioFuture,
    LoopThread,
    get_loop_thread,
    get_runtime_loop,
    run_coroutine,
    shutdown,
    stop_actor,
    stop_all_actors,
    stop_owned_actor,
    tell_quietly,
)

__all__ = [
    "AsyncioActor",
    "AsyncioFuture",
    "LoopThread",
    "get_loop_thread",
    "get_runtime_loop",
    "run_coroutine",
    "shutdown",
    "stop_actor",
    "stop_all_actors",
    "stop_owned_actor",
    "tell_quietly",
]
