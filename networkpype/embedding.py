"""Blocking facades for hosts that run no event loop: plain threads, pykka ``ThreadingActor``\\s.

:class:`SyncNetworkPype` drives one supervised WebSocket (a ``WebSocketManager``) and
:class:`SyncShardedNetworkPype` topic subscriptions spread over several (a
``ShardedWebSocketManager``); two classes because their commands differ. Both build the
``NetworkPype`` and its manager on an event-loop thread and give the host blocking calls::

    with SyncNetworkPype() as pype:              # any thread but a loop's
        pype.connect(url)
        pype.subscribe(WebSocketJSONRequest(payload={"method": "SUBSCRIBE", ...}))
        for message in pype.messages(timeout=5.0):
            ...

Lifecycle. ``start()`` (or ``with``, or the first command) starts the facade; ``stop()`` ends
it for good (make a new instance to start again).

Threads. Every method may be called from any thread that runs no event loop, several at once.
A blocking call from a thread that runs one (the loop thread itself, inside an ``on_escalate``
callback, an ``AsyncioActor``'s handler) raises ``BlockingCallError`` instead of deadlocking;
``get_nowait()`` and ``get(timeout=0)`` poll and are allowed anywhere.

The loop. By default the library's loop thread (:func:`networkpype.actors.get_loop_thread`) is
started or reused, and is left running after ``stop()`` for the next user (it stops at
interpreter exit, or with :func:`networkpype.actors.shutdown`). With ``own_loop_thread=True``
the facade starts a loop thread of its own and ``stop()`` shuts it down: nothing of ours is
left, not even a thread.

Timeouts, in seconds. Every command waits at most its ``timeout`` (default: the
``call_timeout`` given to the constructor, 10 s); past it the command is cancelled on the loop
(whether it took effect is then unknown) and ``TimeoutError`` is raised. ``get(timeout=None)``
is the exception: it waits until a message arrives or the stream ends; so is
``SyncNetworkPype.connect(url, retry=True)`` without a ``timeout``: it waits as long as the
restart policy retries (``stop()`` from another thread ends it).

Reading. A consumer task on the loop takes each message from the manager (post-processed, and
the lifecycle events of ``networkpype.protocol.events`` when ``events=True``) and puts it in a
thread-safe queue of ``max_pending`` items. When that queue is full the task stops taking, so
the manager's own queue fills and its ``overflow`` policy applies (``"block"``, the default:
the socket is no longer read and nothing is lost). ``get()`` returns None once the stream has
ended and been drained, ``get_nowait()`` raises ``queue.Empty`` when nothing is waiting.
An error is raised as a ``WebSocketManager`` consumer would see it, once, in its place, to
the one reader that reaches it; the next read goes on after it: what a post-processor raised
(that one message is skipped), ``ConsumerOverflowError`` (``overflow="error"``), and, when
the supervisor gave up, ``GaveUpError`` (a ``ConnectionError``) after the messages received
before it; the stream then ends. A reader that logs an error and reads on thus sees each
error once, and stops at the end (None).

Supervision as a subsystem: ``parent=`` (an ``ActorRef``, any pykka actor: a
``ThreadingActor`` of the host's) is told ``ChildGaveUp`` when a connection is given up on;
``on_escalate(connection_id, error)`` is the callback form, called on the loop thread.
"""

from __future__ import annotations

from networkpype._embedding._facade import DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_PENDING
from networkpype._embedding._sharded import SyncShardedNetworkPype
from networkpype._embedding._single import SyncNetworkPype, SyncStatistics
from networkpype._embedding._stream import SyncStream

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_MAX_PENDING",
    "SyncNetworkPype",
    "SyncShardedNetworkPype",
    "SyncStatistics",
    "SyncStream",
]
