"""Non-blocking conveniences for loop code: tell an actor that may be dead, stop actors.

Part of the asyncio actor runtime; import them from :mod:`networkpype.runtime`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pykka
from pykka import ActorDeadError, ActorRef, ActorRegistry

from networkpype.runtime._future import _await_future
from networkpype.runtime._pykka_internals import ActorStop

__all__ = ["cancel_and_wait", "stop_actor", "stop_all_actors", "stop_owned_actor", "tell_quietly"]


def tell_quietly(ref: ActorRef[Any], message: Any) -> bool:
    """``ref.tell(message)``, or False when the actor is already dead.

    For reports from tasks that may outlive their recipient (a reader whose parent is being
    stopped): the report has nobody left to act on it, which is not an error.
    """
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        return False
    return True


# `timeout` mirrors ActorRef.stop(timeout=...), which this replaces in loop code.
async def stop_actor(ref: ActorRef[Any], timeout: float | None = None) -> bool:  # noqa: ASYNC109
    """Stop the actor behind ``ref`` from loop code, without blocking the loop.

    Messages sent before are handled first, then ``on_stop`` runs. Returns True once the actor
    has stopped (also when a stop request was already queued), False if it was already dead or
    in ``on_stop``. Raises
    ``TimeoutError`` if that takes more than ``timeout`` seconds; the stop request stays queued.
    Works for actors on any loop, and for pykka's thread actors.
    """
    future = ref.ask(ActorStop(), block=False)
    try:
        async with asyncio.timeout(timeout):
            await _await_future(future)
    except ActorDeadError:
        return False
    return True


async def stop_owned_actor(ref: ActorRef[Any]) -> bool:
    """:func:`stop_actor` for a cleanup path: the actor has stopped when this returns, even if
    the calling task is cancelled meanwhile (that cancellation is raised once it has).

    For an actor only the calling task knows (one it started and is abandoning): returning
    before it stopped would leave its resources (a socket) to close after whoever awaited the
    caller went on. Stopping an actor whose ``on_stop`` is prompt keeps this prompt.
    """
    stopping = asyncio.ensure_future(stop_actor(ref))
    interrupted: asyncio.CancelledError | None = None
    while not stopping.done():
        try:
            await asyncio.shield(stopping)
        except asyncio.CancelledError as error:
            interrupted = error  # re-raised below, once the actor has stopped
    if interrupted is not None:
        if not stopping.cancelled():
            stopping.exception()  # retrieved: the cancellation is what the caller sees
        raise interrupted
    return stopping.result()


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel ``tasks`` and wait until every one has finished (None, finished ones and the
    calling task itself are skipped).

    What they end with, their cancellation or an error raised before the cancel reached
    them, is retrieved and dropped: their owner is stopping them and has no use for it. A
    cancellation of the calling task meanwhile is raised once they have all finished, so
    nothing they hold (a socket, an actor) outlives the caller's wait.
    """
    current = asyncio.current_task()
    pending = [t for t in tasks if t is not None and t is not current and not t.done()]
    for task in pending:
        task.cancel()
    interrupted: asyncio.CancelledError | None = None
    for task in pending:
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError as error:
                if not task.done():
                    interrupted = error  # the caller's own: raised once they have finished
            except Exception:  # retrieved below
                pass
    for ended in tasks:
        if ended is not None and ended.done() and not ended.cancelled():
            ended.exception()  # retrieved: no "exception was never retrieved" at collection
    if interrupted is not None:
        raise interrupted


async def stop_all_actors() -> list[bool]:
    """Stop every registered actor, newest first, one after the other: the non-blocking
    ``ActorRegistry.stop_all()`` for loop code (bound it with ``asyncio.timeout``).

    Returns each :func:`stop_actor` result, newest actor first.
    """
    return [await stop_actor(ref) for ref in reversed(ActorRegistry.get_all())]
