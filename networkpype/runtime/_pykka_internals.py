"""Every private pykka name the asyncio runtime relies on, in one place.

pykka documents ``_create_actor_inbox``, ``_create_future`` and ``_start_actor_loop`` as the hooks
for implementors of new actor types; the rest below is implementation detail that pykka may change
in any release. The runtime (``runtime.py`` and its private modules ``_future``, ``_inbox``,
``_helpers``, ``_loop_thread``) imports private pykka names only from this module, pyproject pins
pykka to the major version this was written against, :func:`check_pykka_compatibility` fails the
import loudly if a name moved, and ``tests/pykka_suite/run.py`` runs pykka's own test-suite
against the runtime so a change of *behaviour* fails CI too.
"""

from __future__ import annotations

import importlib.metadata

import pykka

# The Protocol of ``Actor.actor_inbox`` (``put(envelope, /)``, ``get()``, ``empty()``): the return
# type of the ``_create_actor_inbox`` hook, which the runtime's inbox implements.
from pykka._actor import ActorInbox

# What ``ActorRef.tell``/``ask`` put in the inbox: ``.message`` and ``.reply_to`` (a future or
# None). The runtime reads both, exactly as pykka's own actor loop does.
from pykka._envelope import Envelope

# The type of the callable given to ``Future.set_get_hook``: ``(timeout) -> value``.
from pykka._future import GetHookFunc

# The exc_info triple ``Future.set_exception`` takes (``sys.exc_info()``'s type).
from pykka._types import OptExcInfo

# The message ``ActorRef.stop()`` asks and ``Actor.stop()`` tells. The runtime intercepts it to run
# an async-aware stop, replies ``None`` to it when it is left in the inbox of a dead actor (as
# pykka's teardown does), and asks it in ``stop_actor`` to stop an actor without blocking.
from pykka.messages import _ActorStop as ActorStop

__all__ = [
    "ACTOR_HOOKS",
    "ACTOR_METHODS_CALLED",
    "ACTOR_METHODS_REPLACED",
    "FUTURE_METHODS_REPLACED",
    "PYKKA_LOGGER_NAME",
    "TESTED_PYKKA_MAJOR",
    "ActorInbox",
    "ActorStop",
    "Envelope",
    "GetHookFunc",
    "OptExcInfo",
    "check_pykka_compatibility",
]

# The major version of pykka whose internals this module was written against; pyproject's
# ``pykka>=4.5,<5`` pin says the same.
TESTED_PYKKA_MAJOR = 4

# pykka logs actor lifecycle events on this logger. The runtime emits the same records in the same
# words (``Stopped %s``, ``Exception returned from %s to caller:``, ``%r in %s. Stopping all
# actors.``) so that users' log filters and pykka's logging tests see no difference.
PYKKA_LOGGER_NAME = "pykka"

# ``Actor`` methods the runtime overrides as pykka's runtime hooks (called by ``Actor.__init__``,
# ``ActorRef.ask``/``stop`` and ``Actor.start`` respectively).
ACTOR_HOOKS = (
    "_create_actor_inbox",
    "_create_future",
    "_start_actor_loop",
)

# ``Actor`` methods the runtime's loop calls unchanged.
ACTOR_METHODS_CALLED = (
    # Dispatches ProxyCall/ProxyGetAttr/ProxySetAttr to the actor's attributes and anything else
    # to ``on_receive``; its return value (awaited when it is a coroutine) is the reply.
    "_handle_receive",
    # Logs "Unhandled exception in ...", unregisters the actor and sets ``actor_stopped``.
    "_handle_failure",
)

# ``Actor`` methods whose semantics the runtime re-implements as coroutines, so async hooks are
# awaited. Any change to these in pykka must be mirrored in ``runtime.AsyncioActor``.
ACTOR_METHODS_REPLACED = (
    "_actor_loop",  # the synchronous loop a thread runs; AsyncioActor makes calling it an error
    "_actor_loop_setup",  # on_start, failure -> _handle_failure
    "_actor_loop_running",  # the message loop: replies, on_failure, BaseException -> stop all
    "_actor_loop_teardown",  # ActorDeadError to messages left in the inbox, None to stop requests
    "_stop",  # unregister, set actor_stopped, log "Stopped", on_stop
)

# ``Future`` methods ``_future.AsyncioFuture`` replaces wholesale, keeping their documented
# semantics: it keeps its own get-hook state, so pykka's private ``_get_hook`` and
# ``_get_hook_result`` (set by ``Future.__init__``/``set_get_hook``, read by ``Future.get``) are
# neither initialised nor read. ``map``/``filter``/``join``/``reduce`` are inherited: they build
# futures with ``self.__class__()`` and ``set_get_hook``, which is why the get-hook path matters.
FUTURE_METHODS_REPLACED = (
    "__init__",
    "get",
    "set",
    "set_exception",
    "set_get_hook",
    "__await__",
    "__iter__",
)


def check_pykka_compatibility() -> None:
    """Raise ``ImportError`` unless the installed pykka has every name this module relies on.

    Called once when this module is imported, so an incompatible pykka fails at import time with
    a message naming what is missing rather than misbehaving at run time.
    """
    version = importlib.metadata.version("pykka")
    major = int(version.split(".", 1)[0])
    if major != TESTED_PYKKA_MAJOR:
        msg = (
            f"networkpype's actor runtime was tested with pykka {TESTED_PYKKA_MAJOR}.x, "
            f"but pykka {version} is installed"
        )
        raise ImportError(msg)
    names = (*ACTOR_HOOKS, *ACTOR_METHODS_CALLED, *ACTOR_METHODS_REPLACED)
    missing = [name for name in names if not callable(getattr(pykka.Actor, name, None))]
    if missing:
        msg = f"pykka {version} lacks Actor methods the runtime relies on: {', '.join(missing)}"
        raise ImportError(msg)


check_pykka_compatibility()
