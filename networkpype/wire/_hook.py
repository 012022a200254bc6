"""The reader's hook on aiohttp's WebSocket parser (issue 15; docs/performance.md).

With the hook, data frames do not wait in aiohttp's frame queue for the reader task to take
them one ``read()`` each: the parser's ``feed_data(message, size)`` calls go straight into
one list per socket read (``data_received`` → parser → ``feed_data`` …), which a callback
scheduled with ``loop.call_soon`` on the read's first frame hands to the delivery queue
once, stamped and counted once. Everything else (ping, pong, close, the closing marker,
errors, end of stream) goes to aiohttp's queue as before and the reader takes it with
``receive()``.

Per connection, never a global patch: ``install`` gives the connection a new parser of
aiohttp's own parser class feeding a queue of a subclass of aiohttp's own queue class, whose
instance ``feed_data`` is this hook's. It does so only when the connection's parser has not
parsed a byte yet (its state equals a fresh parser's), so nothing parsed is lost and no
frame is half in one parser and half in the other, and only when ``hook_layout_ok`` found
every structure relied on. Otherwise the caller reads as before.

Ordering and promises: a text frame that is not ASCII is checked for UTF-8 as it is parsed;
an invalid one, and everything after it, goes to aiohttp's queue (``divert``), so the frames
before it are delivered, the reader fails the connection with 1007 and nothing after it is
delivered. When the delivery queue refuses frames (it is full, ``overflow="block"``), they
wait in ``pending``, in order, later frames behind them; the transport stops reading
(``pause_reading``, as aiohttp's own queue does at its limit) and the reader is woken
(``WAKE`` in aiohttp's queue) to ``put`` them as room is made, and resumes reading.

With the hook, an idle reader needs no task: after ``park(wake)``, ``wake()`` is called
once when aiohttp's queue gets anything (a control frame, a diverted frame, ``WAKE``, through
this hook; the end of stream or an error, through the queue subclass's ``feed_eof`` and
``set_exception``), and the reader starts again to ``receive()`` it. ``unpark()`` cancels
that before anything else reads the queue (``ws.close()``).
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

__all__ = ["WAKE", "FrameHook", "hook_layout_ok", "install"]

_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY
_PING = aiohttp.WSMsgType.PING
_LIMIT = 2**16  # aiohttp's queue limit argument (it pauses at twice this many bytes)


class _Wake:
    """The type of ``WAKE``: not a frame type aiohttp knows, so ``receive()`` returns it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WAKE"


WAKE = aiohttp.WSMessage(_Wake(), None, None)  # type: ignore[arg-type]
"""Fed into aiohttp's queue when frames wait in ``pending``: the reader wakes and puts them."""

Account = Callable[[int, int], None]  # stamp and count a batch: (messages, bytes)
OfferMany = Callable[[list[Any]], int]  # the delivery queue's: how many it took
Frame = Callable[[bytes], Any]  # a binary payload made a frame for the delivery queue


class FrameHook:
    """The parser's ``feed_data`` for one connection (see the module docstring).

    Not attached (before ``attach`` and after ``detach``) every frame goes to aiohttp's queue,
    exactly as without the hook. Attached, data frames are batched per socket read, each
    batch stamped and counted once (``account(messages, bytes)``) and offered once
    (``offer_many(batch)``, which returns how many it took). ``intercept`` sees a text
    frame first, as in ``pump``.
    """

    __slots__ = (
        "_account",
        "_base_feed",
        "_batch",
        "_binary",
        "_closing",
        "_intercept",
        "_loop",
        "_offer_many",
        "_paused",
        "_protocol",
        "_queue",
        "_scheduled",
        "_screen",
        "_seen",
        "_taking",
        "_wake",
        "_woken",
        "attached",
        "pending",
    )

    def __init__(
        self,
        queue: Any,
        base_feed: Callable[[Any, Any, int], None],
        protocol: Any,
        loop: asyncio.AbstractEventLoop,
        closing: Callable[[], bool],
        binary: Frame,
    ) -> None:
        self._queue = queue  # aiohttp's queue (of the hooked subclass)
        # aiohttp's own feed_data, unbound (the class's: no bound method per connection).
        self._base_feed = base_feed
        self._wake: Callable[[], None] | None = None  # park()'s, until called or unparked
        self._protocol = protocol
        self._loop = loop
        self._closing = closing
        self._binary = binary
        self._batch: list[Any] = []
        self._seen = False  # a frame was intercepted since the last hand-over
        self._scheduled = False
        # Data frames are batched: attached, and no invalid text frame diverted the rest
        # of the stream to aiohttp's queue (one test per frame).
        self._taking = False
        self._paused = False  # the transport was paused by this hook
        self._woken = False  # WAKE is in aiohttp's queue, not yet read
        self._account: Account | None = None
        self._offer_many: OfferMany | None = None
        self._intercept: Callable[[bytes], bool] | None = None
        self._screen: tuple[slice, frozenset[bytes], tuple[bytes, ...]] | None = None
        self.attached = False
        self.pending: list[Any] = []  # refused frames, oldest first (an empty deque: 760 B)

    def attach(
        self,
        account: Account,
        offer_many: OfferMany,
        intercept: Callable[[bytes], bool] | None,
        screen: tuple[slice, frozenset[bytes], tuple[bytes, ...]],
    ) -> None:
        """Data frames parsed from now on are batched and handed over (``pump`` calls this
        when aiohttp's queue holds no frame, with no await before it waits)."""
        self._account = account
        self._offer_many = offer_many
        self._intercept = intercept
        self._screen = screen if intercept is not None else None
        self.attached = self._taking = True

    def detach(self) -> tuple[int, int]:
        """Back to aiohttp's queue for every frame (``pump`` ends). Frames not handed over
        yet (``pending``, then the current read's) are put back into aiohttp's queue, in
        order, for a later reader; returns how many of them (and their bytes) were
        counted already (the pending ones), for the caller's counters."""
        self.attached = self._taking = False
        counted = len(self.pending)
        counted_bytes = 0
        for item in self.pending:
            message = _message(item)
            counted_bytes += len(message[1])
            self._base_feed(self._queue, message, len(message[1]))
        for item in self._batch:
            message = _message(item)
            self._base_feed(self._queue, message, len(message[1]))
        self.pending.clear()
        self._batch.clear()
        self._seen = False
        self._resume()
        return counted, counted_bytes

    def park(self, wake: Callable[[], None]) -> bool:
        """The reader may end: nothing waits for it in aiohttp's queue. ``wake()`` is called
        once, from the loop, when the queue gets anything (see the module docstring); data
        frames keep going to ``offer_many`` meanwhile. False, and nothing done, when the
        queue is not idle (a frame or the end of stream in it, frames pending, closing):
        the reader reads on."""
        queue = self._queue
        if queue._buffer or queue.is_eof() or self.pending or self._closing():
            return False
        self._wake = wake
        return True

    def unpark(self) -> None:
        """``park()``'s ``wake()`` will not be called (something else reads the queue
        now: ``ws.close()``)."""
        self._wake = None

    @property
    def parked(self) -> bool:
        """The reader has parked and not been woken (nor unparked) since."""
        return self._wake is not None

    def queue_changed(self) -> None:
        """aiohttp's queue got something for the reader: wake a parked one."""
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake()

    def _to_queue(self, msg: Any, size: int) -> None:
        """A frame for the reader: into aiohttp's queue, and the reader woken if parked."""
        self._base_feed(self._queue, msg, size)
        if self._wake is not None:
            self.queue_changed()

    def feed(self, msg: Any, size: int) -> None:
        """aiohttp's parser hands over one parsed message (the queue's ``feed_data``)."""
        kind = msg[0]
        if kind is _TEXT:
            if not self._taking:
                self._to_queue(msg, size)
                return
            data = msg[1]
            if not data.isascii():
                try:
                    data.decode()
                except UnicodeDecodeError:
                    # RFC 6455: fail the connection, deliver nothing after it. The reader
                    # gets this frame from aiohttp's queue, after the batch before it.
                    self._taking = False
                    self._to_queue(msg, size)
                    return
            screen = self._screen
            if screen is not None:
                where, may_be, prefixes = screen
                if data[where] in may_be and data.startswith(prefixes):
                    self._seen = True
                    if self._intercept(data):  # type: ignore[misc]
                        if not self._scheduled:
                            self._scheduled = True
                            self._loop.call_soon(self.flush)
                        return
            self._batch.append(data)
        elif kind is _BINARY:
            if not self._taking:
                self._to_queue(msg, size)
                return
            self._batch.append(self._binary(msg[1]))
        else:
            self._to_queue(msg, size)
            return
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand the frames of the read over (the ``call_soon`` callback, or the reader
        before it handles anything from aiohttp's queue)."""
        self._scheduled = False
        batch = self._batch
        if not batch and not self._seen:
            return
        if not self.attached:  # detached meanwhile: detach() took them
            return
        if self._closing():
            # disconnect() began: as without the hook, frames not yet read are aiohttp's
            # (its close() reads past them to the server's close frame).
            for item in batch:
                message = _message(item)
                self._base_feed(self._queue, message, len(message[1]))
            batch.clear()
            self._seen = False
            return
        count = len(batch)
        # Frames have a len(): their payload's (summed in C, not counted frame by frame).
        self._account(count, sum(map(len, batch)) if count else 0)  # type: ignore[misc]
        self._seen = False
        if not count:
            return  # every frame was intercepted: stamped, not counted
        pending = self.pending
        if pending:  # the reader is putting older frames: these wait behind them
            pending.extend(batch)
            batch.clear()
            self._pause()
            return
        taken = self._offer_many(batch)  # type: ignore[misc]
        if taken < count:
            pending.extend(batch[taken:])
            self._pause()
            if not self._woken:
                self._woken = True
                self._to_queue(WAKE, 0)
        batch.clear()

    def _pause(self) -> None:
        protocol = self._protocol
        if not protocol._reading_paused:
            protocol.pause_reading()
            self._paused = True

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            if self._protocol._reading_paused:
                self._protocol.resume_reading()

    async def drain(self, put: Callable[[Any], Any]) -> None:
        """The reader's part: ``put`` every pending frame in order, waiting for room, then
        let the transport read again. A frame leaves ``pending`` only once put (a
        cancelled reader leaves it there)."""
        self._woken = False
        pending = self.pending
        done = 0
        try:
            while done < len(pending):  # a flush meanwhile appends behind
                await put(pending[done])
                done += 1
        finally:
            del pending[:done]
        self._resume()


def _message(item: Any) -> Any:
    """A batched frame as the message aiohttp's parser made of it."""
    if type(item) is bytes:
        return aiohttp.WSMessage(_TEXT, item, "")
    return aiohttp.WSMessage(_BINARY, item.data, "")


class _ProbeProtocol:
    """The stand-in transport protocol of the self-check's probe queue."""

    _reading_paused = False

    def pause_reading(self) -> None:
        """Never called: the probe holds a few small frames."""

    def resume_reading(self) -> None:
        """Never called: the probe holds a few small frames."""


def _state(parser: Any) -> list[Any] | None:
    """Everything a parser holds, but its queue and references to itself (compared with a
    fresh parser's: equal means it has parsed nothing yet); None when it cannot be seen."""
    reduce = getattr(parser, "__reduce_cython__", None)
    if reduce is not None:
        values = reduce()[2]  # Cython's pickle support: every C attribute, in a tuple
    elif hasattr(parser, "__dict__"):
        values = tuple(vars(parser).values())
    else:
        return None
    if type(values) is not tuple:
        return None
    return [
        value
        for value in values
        if not isinstance(value, asyncio.AbstractEventLoop | type)
        and not hasattr(value, "feed_data")  # the queue
        and type(value).__name__ not in ("weakref", "ReferenceType")
    ]


def _fresh(parser: Any, queue: Any, max_msg_size: int, compress: bool) -> bool:
    """Has ``parser`` parsed nothing yet (its state that of a new parser like it)?"""
    now = _state(parser)
    new = _state(type(parser)(queue, max_msg_size, compress=compress, decode_text=False))
    return now is not None and now == new


@functools.cache
def hook_layout_ok(queue_type: Any, parser_type: Any) -> bool:
    """The hook's self-check, once per pair of aiohttp's queue and parser types: a
    subclass of the queue can take an instance ``feed_data`` that the parser calls for
    every frame, aiohttp's own ``feed_data`` still queues a frame in ``_buffer``, and a
    fresh parser can be told from one that has parsed a byte. Any difference (another
    layout, an error in the probe): False, and the reader does without the hook."""
    try:
        hooked = _hooked_type(queue_type)
        loop = asyncio.get_running_loop()
        queue = hooked(_ProbeProtocol(), _LIMIT, loop=loop)
        seen: list[Any] = []
        queue.feed_data = lambda msg, size: seen.append((msg[0], msg[1], size))
        parser = parser_type(queue, 2**16, compress=False, decode_text=False)
        if not _fresh(parser, queue, 2**16, False):
            return False
        fed = parser.feed_data(b"\x81\x02ab\x89\x01p\x82\x01c\x81\x03d")  # half a frame last
        if fed != (False, b""):
            return False
        if seen != [(_TEXT, b"ab", 2), (_PING, b"p", 1), (_BINARY, b"c", 1)]:
            return False
        if _fresh(parser, queue, 2**16, False):  # half a frame in it: not fresh
            return False
        base = queue_type.feed_data.__get__(queue)
        message = aiohttp.WSMessage(_PING, b"p", "")
        base(message, 1)
        buffer = queue._buffer
        if not (type(buffer) is deque and len(buffer) == 1 and buffer[0][0] is message):
            return False
        return _parking_ok(queue_type, parser_type, loop)
    except Exception:  # any mismatch means "read without the hook"
        return False


def _never() -> bool:
    """The probe hook's ``closing``: never."""
    return False


def _parking_ok(queue_type: Any, parser_type: Any, loop: asyncio.AbstractEventLoop) -> bool:
    """Does a parked reader's ``wake()`` come for a control frame, the end of stream and a
    parse error, with the parser calling into a hooked queue as it will?"""
    woken: list[int] = []

    def parked(frames: bytes | None) -> tuple[Any, FrameHook]:
        queue = _hooked_type(queue_type)(_ProbeProtocol(), _LIMIT, loop=loop)
        hook = FrameHook(queue, queue_type.feed_data, _ProbeProtocol(), loop, _never, bytes)
        queue.feed_data = hook.feed
        parser = parser_type(queue, 2**16, compress=False, decode_text=False)
        if not hook.park(lambda: woken.append(1)):
            raise AssertionError("an empty queue must let the reader park")
        if frames is not None:
            parser.feed_data(frames)
        return queue, hook

    pinged, hook = parked(b"\x89\x01p")  # a ping: a control frame for the reader
    if woken != [1] or len(pinged._buffer) != 1 or hook.parked or hook.park(lambda: None):
        return False
    ended, _ = parked(None)
    ended.feed_eof()  # the transport's end (aiohttp's protocol calls this)
    if woken != [1, 1] or not ended.is_eof():
        return False
    failed, _ = parked(b"\x83\x00")  # a reserved opcode: the parser's set_exception
    return woken == [1, 1, 1] and failed.exception() is not None


@functools.cache
def _hooked_type(queue_type: Any) -> Any:
    """A subclass of aiohttp's queue whose instances can have a ``feed_data`` of their own
    (Cython's classes look a Python subclass's methods up on the instance), and whose end
    of stream and errors wake a parked reader."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        queue_type.__init__(self, *args, **kwargs)
        self.feed_data = queue_type.feed_data.__get__(self)  # aiohttp's, until a hook's

    def feed_eof(self: Any) -> None:
        queue_type.feed_eof(self)
        _queue_changed(self)

    def set_exception(self: Any, *args: Any, **kwargs: Any) -> None:
        queue_type.set_exception(self, *args, **kwargs)
        _queue_changed(self)

    namespace = {
        "__module__": __name__,
        # A slot, not an instance dict (about 400 B per connection): the hook's feed.
        "__slots__": ("feed_data",),
        "__init__": __init__,
        "feed_eof": feed_eof,
        "set_exception": set_exception,
    }
    return type("HookedFrameQueue", (queue_type,), namespace)


def _queue_changed(queue: Any) -> None:
    """The hook of ``queue`` (its instance ``feed_data`` is the hook's ``feed``), told."""
    hook = getattr(queue.feed_data, "__self__", None)
    if type(hook) is FrameHook:
        hook.queue_changed()


def install(
    ws: Any, max_msg_size: int, closing: Callable[[], bool], binary: Frame
) -> FrameHook | None:
    """Give ``ws`` (a connected ``ClientWebSocketResponse``) a hook; None when it cannot be
    done safely (see the module docstring) and ``ws`` is left as it was."""
    try:
        queue = ws._reader
        protocol = queue._protocol
        parser = protocol._payload_parser
        queue_type: Any = type(queue)
        parser_type: Any = type(parser)
        if protocol._payload is not queue or not hook_layout_ok(queue_type, parser_type):
            return None
        if getattr(ws, "_parser", parser) is not parser or queue._buffer:
            return None
        if type(protocol._reading_paused) is not bool or protocol._reading_paused:
            return None
        # The parser's own setting (aiohttp 3.14.0 lets every parser accept deflate).
        for compress in (bool(ws.compress), not ws.compress):
            if _fresh(parser, queue, max_msg_size, compress):
                break
        else:
            return None  # the server's first bytes came with the handshake: not split
        loop = asyncio.get_running_loop()
        hooked = _hooked_type(queue_type)(protocol, _LIMIT, loop=loop)
        hook = FrameHook(hooked, queue_type.feed_data, protocol, loop, closing, binary)
        hooked.feed_data = hook.feed
        new_parser = parser_type(hooked, max_msg_size, compress=compress, decode_text=False)
    except Exception:
        return None
    protocol._payload_parser = new_parser
    protocol._payload = hooked
    ws._reader = hooked
    if hasattr(ws, "_parser"):
        ws._parser = new_parser  # aiohttp keeps its parser alive through the response
    return hook
