"""The pykka-on-asyncio actor runtime: pykka actors whose inboxes are served by asyncio tasks.

The only package that touches pykka's internals (``_pykka_internals`` lists every reach).
It knows nothing of WebSockets: the library's actors (:mod:`networkpype.actors`) and the
supervisor stand on it. See :mod:`networkpype.runtime._runtime` for the semantics.
"""

from networkpype.runtime._future import _wake as wake
from networkpype.runtime._helpers import cancel_and_wait
from networkpype.runtime._runtime import (
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
    "cancel_and_wait",
    "get_loop_thread",
    "get_runtime_loop",
    "run_coroutine",
    "shutdown",
    "stop_actor",
    "stop_all_actors",
    "stop_owned_actor",
    "tell_quietly",
    "wake",
]
