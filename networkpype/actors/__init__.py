"""The actor runtime and the actors: pykka actors served by asyncio tasks."""

from networkpype.actors.runtime import (
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
