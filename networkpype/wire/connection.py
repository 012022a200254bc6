"""``WebSocketConnection``: the raw WebSocket lifecycle over one aiohttp WebSocket.

It works standalone (the seed's first snippet) and is the socket the connection actor owns.
Control frames are handled as the seed says: a ping is answered with a pong and discarded, a
pong is discarded, a close frame sets ``connected`` to False and makes ``receive()`` raise
:class:`~networkpype.protocol.errors.ConnectionClosedError` (a ``ConnectionError``).

RFC 6455 is kept whatever the decoder: a text frame that is not valid UTF-8 fails the
connection with 1007 (§8.1) and raises
:class:`~networkpype.protocol.errors.ProtocolViolationError`; nothing after it is delivered.
The check costs one ``bytes.isascii()`` per text frame (a C scan, ~20 ns for 150 bytes):
only frames with non-ASCII bytes are decoded to be checked. It is made here, where the frame
type is known and the connection can be failed before a later frame is read, not in the
decoders: msgspec validates the strings it builds, but a typed decoder skips unknown fields
unchecked and the raw decoder parses nothing.

Logging: INFO on connect and close, DEBUG per control frame. Log lines and error messages
show the URL redacted (``redact_url``); the request headers appear in none. Not thread-safe:
use it from the event loop that connected it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import ssl
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from typing import Any, ClassVar, TypeVar

import aiohttp
import msgspec
from yarl import URL

from networkpype.protocol.errors import (
    AlreadyConnectedError,
    CertificateError,
    ConfigurationError,
    ConnectionClosedError,
    ConnectionFailedError,
    HandshakeError,
    HandshakeRejectedError,
    InvalidURLError,
    MessageTimeoutError,
    MessageTooBigError,
    NotConnectedError,
    ProtocolViolationError,
)
from networkpype.protocol.options import DEFAULT_COMPRESS, compress_window_bits
from networkpype.protocol.redaction import redact_url
from networkpype.wire._hook import WAKE, FrameHook, install
from networkpype.wire._reads import PublicReads, WhenRoom
from networkpype.wire._redaction import public_cause
from networkpype.wire.decoding import DecoderSpec, MessageDecoder, make_decoder
from networkpype.wire.pacing import FramePacer
from networkpype.wire.request import WebSocketRequest
from networkpype.wire.response import WebSocketResponse

__all__ = [
    "DEFAULT_COMPRESS",
    "DEFAULT_MAX_MSG_SIZE",
    "BinaryFrame",
    "WebSocketConnection",
    "close_reason",
    "compress_window_bits",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_json_encode = msgspec.json.Encoder().encode

DEFAULT_MAX_MSG_SIZE = 4 * 1024 * 1024
"""Largest data message accepted, in bytes (aiohttp's default); larger ends the connection."""

_FATAL_HANDSHAKE = frozenset({401, 403, 404})
_SIZE_RE = re.compile(r"size (\d+)")
_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY
_PING = aiohttp.WSMsgType.PING
_PONG = aiohttp.WSMsgType.PONG
_CLOSE = aiohttp.WSMsgType.CLOSE
_INVALID_TEXT = 1007  # RFC 6455 §7.4.1: data inconsistent with the message type
_PROTOCOL_ERROR = 1002


def _valid_close_code(code: int) -> bool:
    """A close code an endpoint may send (RFC 6455 §7.4, the IANA registry): 1000-1003,
    1007-1014, 3000-4999. 1004 is reserved; 1005, 1006 and 1015 must never be sent."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def close_reason(code: int, reason: str) -> bytes:
    """The encoded ``reason`` of a close frame we send with ``code``; raises
    ``ConfigurationError`` for a code no endpoint may send or a reason over 123 bytes."""
    if isinstance(code, bool) or not isinstance(code, int) or not _valid_close_code(code):
        raise ConfigurationError(
            f"close code {code!r} may not be sent: use 1000-1003, 1007-1014 or 3000-4999 "
            "(4000-4999 are for applications)"
        )
    encoded = reason.encode()
    if len(encoded) > 123:  # a control frame carries 125 bytes, the code takes 2
        raise ConfigurationError(
            f"a close reason holds at most 123 bytes of UTF-8, got {len(encoded)}"
        )
    return encoded


MAX_RETRY_AFTER = 3600.0
"""Seconds: a longer ``Retry-After`` is capped (and logged) so a connection is never parked
for days by one header."""


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    if value is None:
        return None
    try:
        seconds = max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date; rare for WebSocket venues, ignored
    if seconds > MAX_RETRY_AFTER:
        logger.warning("Retry-After of %.0f s capped at %.0f s", seconds, MAX_RETRY_AFTER)
        return MAX_RETRY_AFTER
    return seconds


def translate_connect_error(url: str, exc: BaseException) -> Exception:
    """Map an aiohttp/OS failure of the opening handshake onto the error tree.

    The error shows ``url`` redacted (``redact_url``: a token in the query string or the
    user-info never reaches a message) and comes with ``__cause__`` set: ``exc`` itself, or,
    for aiohttp's exceptions that hold the request (its URL and headers: ``Authorization``,
    API keys), a stand-in of the same type, status and message without them (see
    :mod:`networkpype.wire._redaction`). Raise it outside the ``except`` block that
    caught ``exc``, or ``exc`` becomes its ``__context__``. Re-raises ``exc`` when it is none
    of these failures.
    """
    cause = public_cause(exc)
    error = _translated(redact_url(url), exc, cause)
    error.__cause__ = cause
    return error


def _translated(shown: str, exc: BaseException, cause: BaseException) -> Exception:
    """The error for ``exc``; ``shown`` is the redacted URL, ``cause`` the public cause."""
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        headers = dict(exc.headers or {})
        if exc.status in _FATAL_HANDSHAKE:
            return HandshakeRejectedError(
                f"{shown}: server refused the WebSocket upgrade with HTTP {exc.status} "
                f"({exc.message}); check the URL and credentials",
                status=exc.status,
            )
        if exc.status == 101:
            # 101 with a broken upgrade (bad Sec-WebSocket-Accept, wrong headers): a
            # misbehaving server or proxy; retried like a server error.
            return HandshakeError(
                f"{shown}: invalid WebSocket upgrade response ({exc.message})", status=101
            )
        return HandshakeError(
            f"{shown}: server answered the WebSocket upgrade with HTTP {exc.status} "
            f"({exc.message})",
            status=exc.status,
            headers=headers,
            retry_after=_retry_after(headers),
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
        return CertificateError(
            f"{shown}: TLS certificate verification failed ({cause}); fix the server's "
            "certificate or, for a server you trust, pass verify_ssl=False"
        )
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return InvalidURLError(f"{shown!r} is not a valid WebSocket URL ({cause})")
    if isinstance(exc, asyncio.TimeoutError):
        return ConnectionFailedError(f"{shown}: opening handshake timed out")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionFailedError(
            f"{shown}: the server closed the connection during the opening handshake"
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        return ConnectionFailedError(
            f"{shown}: the server's answer to the upgrade request is not valid HTTP "
            f"({exc.message or type(exc).__name__}); is this a WebSocket endpoint?"
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ConnectionFailedError(f"{shown}: could not connect ({cause})")
    raise exc


def check_ws_url(url: str) -> URL:
    """Parse ``url`` and require a ws/wss scheme and a host; raises ``InvalidURLError``
    (whose message shows ``url`` redacted)."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:  # yarl's messages do not quote the URL
        raise InvalidURLError(f"{redact_url(url)!r} is not a valid WebSocket URL ({exc})") from exc
    if parsed.scheme not in ("ws", "wss", "http", "https") or not parsed.host:
        raise InvalidURLError(
            f"{redact_url(url)!r} is not a WebSocket URL: expected ws://host/... or wss://"
        )
    return parsed


_JSON_PUNCTUATION = frozenset(b'{}[]",: ')


@functools.lru_cache(maxsize=64)  # one answer per set of prefixes, not one per connection
def _screening_byte(prefixes: tuple[bytes, ...]) -> tuple[slice, frozenset[bytes]]:
    """For ``pump``: where to look first in a text frame, and what may be there when the
    frame starts with one of ``prefixes``. One byte, taken as a one-byte slice: a cached
    object, so the test allocates nothing, and a frame too short gives b"", never an
    error. Only frames that pass are compared with the prefixes (``bytes.startswith``
    with a tuple costs about twice as much, and was the largest cost per frame).

    Any position gives the same answer; the choice only decides how many frames pass:
    the deepest one where no prefix has JSON punctuation (which every JSON frame has
    about there), typically inside the name of a reply's first key. With a prefix b""
    (every frame matches): an empty slice, which every frame passes.
    """
    shortest = min(map(len, prefixes), default=0)
    if not shortest:
        return slice(0, 0), frozenset((b"",))
    plain = [i for i in range(shortest) if not any(p[i] in _JSON_PUNCTUATION for p in prefixes)]
    i = plain[-1] if plain else shortest - 1
    return slice(i, i + 1), frozenset(p[i : i + 1] for p in prefixes)


class _ProbeProtocol:
    """The stand-in transport protocol of ``_queue_layout_ok``'s probe queue."""

    _reading_paused = False

    def pause_reading(self) -> None:
        """Never called: the probe holds one small frame."""

    def resume_reading(self) -> None:
        """Never called: the probe holds one small frame."""


@functools.cache
def _queue_layout_ok(queue_type: type) -> bool:
    """The fast path's self-check, once per type of aiohttp's frame queue: does a queue of
    ``queue_type`` keep its parsed frames as ``(message, size)`` pairs in a deque
    ``_buffer``, and does its ``read()`` hand the head back without suspending when one is
    there (and account for it: ``_size`` back to 0, where it is visible; aiohttp 3.14.0's
    compiled queue hides it)? A probe queue is fed one frame and read
    to find out; any difference (another layout, a renamed attribute, an error) is False,
    and ``pump`` then reads with the public ``receive()`` only."""
    try:
        probe = queue_type(_ProbeProtocol(), 2**16, loop=asyncio.get_running_loop())
        message = aiohttp.WSMessage(_TEXT, b"probe", None)
        probe.feed_data(message, 5)
        buffer = probe._buffer
        if not (type(buffer) is deque and len(buffer) == 1 and buffer[0][0] is message):
            return False
        if buffer[0][0][0] is not _TEXT:
            return False
        reading = probe.read()
        try:
            reading.send(None)
        except StopIteration as done:
            # aiohttp accounts for it in read(); where the count is visible, it is checked.
            return done.value is message and not buffer and getattr(probe, "_size", 0) == 0
        reading.close()  # it would have waited: not the structure relied on
        return False
    except Exception:  # any mismatch means "use the public path"
        return False


def _parsed_frames(ws: Any) -> Any:
    """For ``pump``: aiohttp's queue of the frames its parser has already parsed for ``ws``
    (its ``_buffer``, taken with its ``read()``), when the installed aiohttp has the
    structures relied on (``_queue_layout_ok``, and ``ws``'s ``_closing``/``_closed`` flags,
    which ``receive()`` would look at); None: read with ``receive()`` only."""
    reader: Any = getattr(ws, "_reader", None)
    queue_type: Any = type(reader)
    if reader is None or not _queue_layout_ok(queue_type):
        return None
    if not all(type(getattr(ws, flag, None)) is bool for flag in ("_closing", "_closed")):
        return None
    return reader


def _one_by_one(
    offer: Callable[[bytes | BinaryFrame], bool],
) -> Callable[[list[bytes | BinaryFrame]], int]:
    """``pump``'s ``offer_many`` made of ``offer``: frames offered in order until one is
    refused; the number taken."""

    def offer_many(batch: list[bytes | BinaryFrame]) -> int:
        for taken, frame in enumerate(batch):
            if not offer(frame):
                return taken
        return len(batch)

    return offer_many


@types.coroutine
def _go_on(reading: Coroutine[Any, Any, T], waiting: Any) -> Generator[Any, Any, T]:
    """Await ``reading``, a coroutine started by hand whose first step yielded ``waiting``
    (what it waits for) to the task: that is yielded to the task now, and what the task
    sends or throws in goes on to ``reading`` (a cancellation or a timeout included)."""
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            reading.close()
            raise
        except BaseException as exc:  # thrown in by the task: passed on
            try:
                waiting = reading.throw(exc)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        else:
            try:
                waiting = reading.send(sent)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


class BinaryFrame:
    """The payload of a binary data frame, undecoded (text frames travel as plain bytes)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __len__(self) -> int:
        """The payload's length in bytes."""
        return len(self.data)


class WebSocketConnection:
    """One WebSocket over a shared ``aiohttp.ClientSession``.

    ``decoder`` picks how data frames become ``WebSocketResponse.data`` (see
    :mod:`networkpype.wire.decoding`; default: the seed's JSON-or-text); ``max_msg_size``
    is the largest data message accepted, in bytes (0: no limit); ``close_timeout`` bounds
    the wait for the server's reply to our close frame, in seconds (a dead link is then
    dropped without it); ``handshake_timeout`` bounds the opening handshake, in seconds
    (None: only the session's own timeout applies).
    """

    # Slots: the reader updates some of these per frame.
    __slots__ = (
        "_close_timeout",
        "_connected",
        "_decoder",
        "_display_url",
        "_handshake_timeout",
        "_hook",
        "_last_control_at",
        "_last_data_at",
        "_max_msg_size",
        "_message_timeout",
        "_parsed",
        "_session",
        "_url",
        "_ws",
        "bytes_in",
        "bytes_out",
        "last_error",
        "messages_in",
        "messages_out",
        "opened_at",
        "pacer",
    )

    fast_path_allowed: ClassVar[bool] = True
    """``pump`` takes the frames aiohttp has already parsed without a ``receive()`` each when
    the installed aiohttp passes the self-check (docs/performance.md); False: ``receive()``
    only, for every connection connected from then on (the benchmark's fallback figure)."""

    hook_allowed: ClassVar[bool] = True
    """With the fast path, data frames go from aiohttp's parser straight into one batch per
    socket read (``networkpype.wire._hook``) when the self-check allows it; False: the
    fast path takes them from aiohttp's queue, for connections connected from then on."""

    def __init__(
        self,
        aiohttp_client_session: aiohttp.ClientSession,
        *,
        decoder: DecoderSpec = None,
        max_msg_size: int = DEFAULT_MAX_MSG_SIZE,
        close_timeout: float = 1.0,
        handshake_timeout: float | None = 10.0,
    ) -> None:
        self._session = aiohttp_client_session
        self._close_timeout = close_timeout
        self._handshake_timeout = handshake_timeout
        self._decoder: MessageDecoder = make_decoder(decoder)
        self._max_msg_size = max_msg_size
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        # pump's fast path: aiohttp's queue of parsed frames (its _buffer, read()), or None.
        self._parsed: Any = None
        # pump's hook on aiohttp's parser (the fast path's own), or None.
        self._hook: FrameHook | None = None
        self._connected = False
        self._message_timeout: float | None = None
        self.opened_at = 0.0  # monotonic time of the last successful connect()
        # Frames spaced at the wire, pings and pongs included (a sharded manager's
        # min_send_interval); None: sent as they come.
        self.pacer: FramePacer | None = None
        self.last_error: str | None = None  # why the connection last ended, if it failed
        self.messages_in = 0  # data frames received (by pump and receive)
        self.bytes_in = 0
        self.messages_out = 0  # frames sent
        self.bytes_out = 0
        # Monotonic times of the last data frame and of the last control frame: a data
        # frame then costs the reader one stamp (the last frame of any kind is the later).
        self._last_data_at = 0.0
        self._last_control_at = 0.0
        self._url = ""  # for dialing only; messages show _display_url
        self._display_url = ""

    @classmethod
    def logger(cls) -> logging.Logger:
        """The module's logger (NetworkPype's classmethod; the same object every call)."""
        return logger

    @property
    def connected(self) -> bool:
        """True between a successful ``connect()`` and a close, error or ``disconnect()``."""
        return self._connected

    @property
    def last_recv_time(self) -> float:
        """Unix time (seconds) of the last data frame received; 0.0 before the first."""
        if not self._last_data_at:
            return 0.0
        # Frames are stamped with the monotonic clock (cheaper, and what liveness needs);
        # the Unix time is derived on demand.
        return time.time() - (time.monotonic() - self._last_data_at)

    @property
    def last_frame_monotonic(self) -> float:
        """``time.monotonic()`` of the last frame of any kind (data, ping, pong); 0.0 before."""
        return max(self._last_data_at, self._last_control_at)

    @property
    def fast_path(self) -> bool:
        """True when ``pump`` takes the frames aiohttp has parsed in batches (the installed
        aiohttp passed the self-check at ``connect()``), False when it reads with the public
        ``receive()``, one await per frame."""
        return self._parsed is not None

    @property
    def hooked(self) -> bool:
        """True when data frames go from aiohttp's parser straight into one batch per
        socket read (the hook passed its self-check at ``connect()``); always with
        ``fast_path``. ``pump`` uses it when there is no ``message_timeout``."""
        return self._hook is not None

    @property
    def last_data_monotonic(self) -> float:
        """``time.monotonic()`` of the last data frame; 0.0 before the first."""
        return self._last_data_at

    @property
    def compression(self) -> int:
        """While connected with permessage-deflate, the window bits our frames are compressed
        with (9-15, as the server's answer allows); 0 when compression is off (not offered,
        or declined by the server)."""
        ws = self._ws
        return ws.compress if ws is not None and self._connected else 0

    @property
    def url(self) -> str:
        """The URL connected to, as given (with its credentials): for dialing, not display."""
        return self._url

    async def connect(
        self,
        ws_url: str,
        ping_timeout: float = 10,
        auto_ping: bool = False,
        message_timeout: float | None = None,
        ws_headers: dict[str, Any] | None = None,
        verify_ssl: bool = True,
        *,
        compress: int | bool = DEFAULT_COMPRESS,
    ) -> None:
        """Open the WebSocket.

        ``ping_timeout`` (seconds) is aiohttp's heartbeat: a ping is sent after that long
        without traffic and the connection is closed when no pong follows. ``auto_ping``
        lets aiohttp answer pings itself. ``message_timeout`` (seconds) bounds each
        ``receive()``. Raises ``AlreadyConnectedError`` when open already, and the error
        tree's handshake errors (``HandshakeError``, ``HandshakeRejectedError``,
        ``CertificateError``, ``InvalidURLError``, ``ConnectionFailedError``) on failure.

        ``compress`` offers permessage-deflate (RFC 7692): ``True``, or the largest window
        (9-15 bits) the server may compress with (``True``: 15); the server decides, and
        ``compression`` then tells whether it accepted (0: it declined, frames are plain).
        Off by default: on a fast link inflating costs the reader more than the bytes it
        saves (docs/performance.md). ``ConfigurationError`` for any other value.
        """
        window_bits = compress_window_bits(compress)
        if self._connected:
            raise AlreadyConnectedError(
                f"already connected to {self._display_url}; disconnect() first"
            )
        check_ws_url(ws_url)
        failure: Exception | None = None
        try:
            async with asyncio.timeout(self._handshake_timeout):
                ws = await self._session.ws_connect(
                    ws_url,
                    autoping=auto_ping,
                    heartbeat=ping_timeout or None,
                    headers=ws_headers,
                    ssl=bool(verify_ssl),
                    max_msg_size=self._max_msg_size,
                    decode_text=False,
                    compress=window_bits,
                    # Close frames are answered here: echoed, or 1002 for a code that no
                    # endpoint may send (aiohttp would answer every close with 1000).
                    autoclose=False,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._close_timeout),
                )
        except Exception as exc:
            failure = translate_connect_error(ws_url, exc)
        if failure is not None:
            # Raised here, not in the except block, so that aiohttp's exception (the URL with
            # its token, the request headers) is not its __context__.
            raise failure
        self._ws = ws
        self._parsed = _parsed_frames(ws) if self.fast_path_allowed else None
        self._hook = None
        # Not with a message_timeout: pump would not attach it (see there), and an
        # unattached hook costs a Python call per frame.
        if self._parsed is not None and self.hook_allowed and message_timeout is None:
            self._hook = install(ws, self._max_msg_size, self._closing_now, BinaryFrame)
            if self._hook is not None:
                self._parsed = _parsed_frames(ws)  # the new queue's
                if self._parsed is None:
                    self._hook = None  # left unattached: it passes every frame on
        self._url = ws_url
        self._display_url = redact_url(ws_url)
        self.opened_at = time.monotonic()
        self._message_timeout = message_timeout
        self._connected = True
        if self.pacer is not None:
            self.pacer.reset()  # the venue counts a new socket's frames afresh
        logger.info("connected to %s", self._display_url)

    def _closing_now(self) -> bool:
        """The hook's question: has closing begun (``disconnect()``, or aiohttp's close)?"""
        ws = self._ws
        return ws is None or ws._closing or ws._closed

    async def disconnect(
        self, *, code: int = 1000, reason: str = "", close_timeout: float | None = None
    ) -> None:
        """Close the WebSocket with ``code`` (1000: normal closure) and ``reason`` (at most
        123 bytes of UTF-8). Idempotent; never raises for a dead socket, but raises
        ``ConfigurationError``, leaving the connection open, for a code no endpoint may send
        (1004-1006, 1015, outside 1000-4999) or a longer reason.

        The close handshake (writing our close frame, the server's reply) is given
        ``close_timeout`` seconds (the connection's own setting when None); after that the
        TCP connection is dropped.
        """
        message = close_reason(code, reason)
        if self._hook is not None:
            self._hook.unpark()  # ws.close() reads aiohttp's queue itself
        ws, self._ws = self._ws, None
        self._connected = False
        if close_timeout is None:
            close_timeout = self._close_timeout
        if ws is not None and not ws.closed:
            try:
                async with asyncio.timeout(close_timeout):
                    await ws.close(code=code, message=message)
            except TimeoutError:
                logger.debug(
                    "%s: no close reply within %s s; dropped", self._display_url, close_timeout
                )
            except (aiohttp.ClientError, OSError) as exc:  # already broken: nothing to close
                logger.debug("%s: close failed: %s", self._display_url, exc)
            logger.info("disconnected from %s", self._display_url)

    def _ensure_connected(self) -> aiohttp.ClientWebSocketResponse[bool]:
        if not self._connected or self._ws is None:
            raise NotConnectedError("the WebSocket is not connected; call connect() first")
        return self._ws

    async def send(self, request: WebSocketRequest) -> None:
        """Send ``request`` the way its class says: ``request.send_with_connection(self)``
        (the library's requests send their ``to_frame()``: text for ``str``, binary for
        ``bytes``; a request class of your own may send anything through this connection)."""
        await request.send_with_connection(self)

    async def _send_json(self, payload: Any) -> None:
        """NetworkPype's helper for request classes: ``payload`` as one text frame of JSON."""
        await self.send_frame(_json_encode(payload).decode())

    async def _send_plain_text(self, payload: str) -> None:
        """NetworkPype's helper for request classes: ``payload`` as one text frame."""
        await self.send_frame(payload)

    async def send_frame(self, frame: str | bytes) -> None:
        """Send one text (``str``) or binary (``bytes``) frame (after its turn, when paced)."""
        ws = await self._paced()
        try:
            if isinstance(frame, str):
                await ws.send_str(frame)
            else:
                await ws.send_bytes(frame)
            self._written()
            self.messages_out += 1
            self.bytes_out += len(frame)
        except (aiohttp.ClientError, OSError) as exc:
            self._connected = False
            raise ConnectionClosedError(
                f"{self._display_url}: send failed, connection lost ({exc})", code=1006
            ) from exc

    async def _paced(self, *, urgent: bool = False) -> aiohttp.ClientWebSocketResponse[bool]:
        """The socket, once the pacer lets a frame go (at once when not paced); the frame
        is stamped as written now. ``urgent``: a control frame, ahead of data frames."""
        pacer = self.pacer
        if pacer is None:
            return self._ensure_connected()
        await pacer.turn(urgent=urgent)
        ws = self._ensure_connected()  # still open after the wait
        pacer.sent(time.monotonic())
        return ws

    def _written(self) -> None:
        """A frame has been handed to the transport: it counts from now (a write that
        suspended reaches the wire late)."""
        if self.pacer is not None:
            self.pacer.sent(time.monotonic())

    async def ping(self) -> None:
        """Send a WebSocket ping frame."""
        ws = await self._paced(urgent=True)
        try:
            await ws.ping()
            self._written()
        except (aiohttp.ClientError, OSError) as exc:
            self._connected = False
            raise ConnectionClosedError(
                f"{self._display_url}: ping failed, connection lost ({exc})", code=1006
            ) from exc

    async def receive(self) -> WebSocketResponse | None:
        """Wait for the next data frame and return it decoded.

        Control frames are handled on the way (ping → pong). Raises ``ConnectionClosedError``
        when the connection closes (``connected`` is then False), ``MessageTooBigError`` for a
        message above ``max_msg_size`` and ``MessageTimeoutError`` (a ``TimeoutError``) when
        ``message_timeout`` elapses first; the connection stays open after a timeout. Returns
        None only when the connection was already closed by ``disconnect()``.
        """
        ws = self._ensure_connected()
        decoder = self._decoder
        while True:
            try:
                msg = await ws.receive(self._message_timeout)
            except TimeoutError:
                raise self._timeout_error() from None
            kind = msg.type
            if kind is _TEXT or kind is _BINARY:
                self._last_data_at = time.monotonic()
                data = msg.data
                if kind is _TEXT and not data.isascii():
                    await self._check_text(ws, data)
                self.messages_in += 1
                self.bytes_in += len(data)
                if kind is _TEXT:
                    return WebSocketResponse(decoder.decode_text(data))
                return WebSocketResponse(decoder.decode_binary(data), is_binary=True)
            self._last_control_at = time.monotonic()
            if not await self._control_frame(ws, msg):
                return None

    @property
    def decoder(self) -> MessageDecoder:
        """How data frames become ``WebSocketResponse.data`` (see ``decode``)."""
        return self._decoder

    def decode(self, frame: bytes | BinaryFrame) -> WebSocketResponse:
        """A raw frame from ``pump``, decoded into a fresh response."""
        if type(frame) is bytes:
            return WebSocketResponse(self._decoder.decode_text(frame))
        assert isinstance(frame, BinaryFrame)
        return WebSocketResponse(self._decoder.decode_binary(frame.data), is_binary=True)

    async def pump(
        self,
        offer: Callable[[bytes | BinaryFrame], bool],
        put: Callable[[bytes | BinaryFrame], Awaitable[None]],
        on_timeout: Callable[[MessageTimeoutError], None],
        intercept: Callable[[bytes], bool] | None = None,
        intercept_prefixes: tuple[bytes, ...] = (),
        offer_many: Callable[[list[bytes | BinaryFrame]], int] | None = None,
        when_room: WhenRoom | None = None,
        wake: Callable[[], None] | None = None,
    ) -> bool:
        """Read data frames until the connection ends, undecoded: the payload ``bytes`` of a
        text frame, or a :class:`BinaryFrame`. They are handed on in batches, in order:
        ``offer_many(batch)`` takes what fits and returns how many it took (default: ``offer``
        one by one until it refuses, because the consumer is full); each frame it did not
        take is awaited with ``put``. A batch is every data frame aiohttp's parser has
        queued when the reader looks (the fast path, ``fast_path``), or the frames the public
        ``receive()`` returns without waiting (the fallback; one frame each with a
        ``message_timeout``); it is handed on before the reader waits for more, before a
        control frame is handled and before a non-ASCII frame is checked.
        ``last_data_monotonic``, ``messages_in`` and ``bytes_in`` are updated once per batch.
        With the hook on aiohttp's parser (``hooked``) a batch is one socket read's data
        frames, handed on as it is parsed. ``when_room(callback)`` (the delivery queue's)
        lets the public path hand on one batch per socket read too, refused frames as the
        consumer makes room (``networkpype.wire._reads``).

        Frames are decoded by the consumer (``decode``) as it takes them, not here: a queue of
        undecoded payloads holds no objects the garbage collector must scan, while thousands
        of queued decoded dicts made every collection slow (measured: 2.5x slower for 1 KB
        order-book messages). Control frames are handled as in ``receive()``. A
        ``message_timeout`` is reported to ``on_timeout`` and reading goes on. Returns False
        when ``disconnect()`` closed the connection; raises as ``receive()``.

        ``wake`` lets an idle reader end (an idle connection then holds no task): with the
        hook, when nothing waits in aiohttp's queue, ``pump`` returns True ("parked") and
        the hook goes on handing data frames over; ``wake()`` is called once when the reader
        is needed again (a control frame, a close, an error, the end of stream, frames
        refused by a full queue), and the caller calls ``pump`` again with the same
        arguments. Without the hook it never parks.

        ``intercept(payload)`` (optional) sees a text frame first and returns True to take
        it out of the stream; with ``intercept_prefixes`` it sees only frames that start
        with one of them (tests in C, so data frames cost no call).
        """
        # Only disconnect() (or no connect()) makes this NotConnectedError, which the reader
        # takes for "closed by us". A link that a send or a ping found broken before the
        # reader started is read to its end, and the loss raised as every other loss is.
        ws = self._ws if self._ws is not None else self._ensure_connected()
        prefixes = intercept_prefixes or (b"",)  # none: every text frame is shown
        timeout = self._message_timeout
        if offer_many is None:
            offer_many = _one_by_one(offer)
        # The fast path: frames aiohttp has parsed already are taken with its queue's own
        # read() (no suspension, its accounting and flow control kept), without the Python
        # frame of receive() each. Only data frames, and only while receive() would hand
        # them out itself (not closing): everything else goes through receive() as before.
        parsed = self._parsed
        buffer, read = (parsed._buffer, parsed.read) if parsed is not None else (None, None)
        # The hook (data frames batched per socket read as aiohttp parses them) is
        # attached once aiohttp's queue holds no frame; not with a message_timeout (data
        # frames would not reach receive(), whose timer measures the wait).
        hook = self._hook if buffer is not None and timeout is None else None
        if buffer is None and timeout is None and when_room is not None:
            reads = PublicReads(self._account, offer_many, when_room)
            try:
                await self._pump_public(ws, reads, put, intercept, prefixes)
            finally:
                reads.close()
            return False
        parked = False
        try:
            parked = await self._pump(
                ws, hook, buffer, read, offer_many, put, on_timeout, intercept, prefixes, wake
            )
            return parked
        finally:
            if hook is not None and hook.attached and not parked:
                counted, counted_bytes = hook.detach()  # left in aiohttp's queue
                self.messages_in -= counted
                self.bytes_in -= counted_bytes

    async def _pump_public(
        self,
        ws: aiohttp.ClientWebSocketResponse[bool],
        reads: PublicReads,
        put: Callable[[bytes | BinaryFrame], Awaitable[None]],
        intercept: Callable[[bytes], bool] | None,
        prefixes: tuple[bytes, ...],
    ) -> None:
        """``pump``'s loop on the public path with ``when_room``: one ``receive()`` per
        frame, one batch per socket read (``networkpype.wire._reads``)."""
        screen = intercept is not None
        where, may_be = _screening_byte(tuple(prefixes))
        receive = ws.receive
        append = reads.batch.append
        while True:
            msg: Any = await receive()
            kind = msg[0]
            if kind is _TEXT:
                data = msg[1]
                if not data.isascii():  # ASCII is valid UTF-8: most frames stop here
                    await reads.drain(put)  # those before it
                    await self._check_text(ws, data)
                if not reads.scheduled:  # the first frame of a read
                    if reads.stalled:  # refused frames wait: put them before reading on
                        await reads.drain(put)
                    reads.schedule()
                if (
                    screen
                    and data[where] in may_be
                    and data.startswith(prefixes)
                    and intercept(data)  # type: ignore[misc]
                ):
                    reads.seen = True
                    continue
                append(data)
            elif kind is _BINARY:
                if not reads.scheduled:
                    if reads.stalled:
                        await reads.drain(put)
                    reads.schedule()
                append(BinaryFrame(msg[1]))
            else:
                await reads.drain(put)  # handed on before a close could end it
                self._last_control_at = time.monotonic()
                if await self._control_frame(ws, msg):
                    continue
                return

    async def _pump(
        self,
        ws: aiohttp.ClientWebSocketResponse[bool],
        hook: FrameHook | None,
        buffer: deque[Any] | None,
        read: Callable[[], Awaitable[Any]] | None,
        offer_many: Callable[[list[bytes | BinaryFrame]], int],
        put: Callable[[bytes | BinaryFrame], Awaitable[None]],
        on_timeout: Callable[[MessageTimeoutError], None],
        intercept: Callable[[bytes], bool] | None,
        prefixes: tuple[bytes, ...],
        wake: Callable[[], None] | None,
    ) -> bool:
        """``pump``'s loop (see there): False once closed by us, True once parked."""
        screen = intercept is not None
        where, may_be = _screening_byte(tuple(prefixes))
        timeout = self._message_timeout
        receive = ws.receive
        batch: list[bytes | BinaryFrame] = []
        append = batch.append
        size = 0  # bytes in batch
        seen = False  # data frames read since the last hand-over (intercepted ones too)
        while True:
            msg: Any = None
            if buffer and not (ws._closing or ws._closed):
                # Plain ASCII text frames, nearly all, are batched in this inner loop; any
                # other frame at the head is taken below (a data frame) or left to
                # receive() (the rest). Nothing here suspends: ws cannot start closing.
                while buffer:
                    head = buffer[0][0][0]
                    if head is not _TEXT:
                        if head is _BINARY:
                            msg = await read()  # type: ignore[misc]
                        break
                    data = (await read())[1]  # type: ignore[misc]
                    seen = True
                    if data.isascii() and not (screen and data[where] in may_be):
                        append(data)
                        size += len(data)
                        continue
                    msg = (_TEXT, data)  # to be checked or screened below
                    break
            if msg is None:
                try:
                    if seen and (buffer is not None or timeout is not None):
                        await self._hand_over(batch, size, offer_many, put)  # batch ends
                        size, seen = 0, False
                    if not seen:
                        if (
                            hook is not None
                            and not hook.attached
                            and not buffer
                            and not (ws._closing or ws._closed)
                        ):
                            # Nothing parsed is waiting and nothing suspends until the
                            # wait: the parser's next data frames are the stream's next.
                            hook.attach(
                                self._account, offer_many, intercept, (where, may_be, prefixes)
                            )
                        if (
                            wake is not None
                            and hook is not None
                            and hook.attached
                            and hook.park(wake)
                        ):
                            return True
                        msg = await receive(timeout)
                        if hook is not None and hook.attached:
                            # The hook's frames came first: handed over before this
                            # message is handled (a close, an error, a diverted frame).
                            hook.flush()
                            await hook.drain(put)
                        if msg is WAKE:
                            continue
                    else:
                        # The public path: a batch is what receive() returns without
                        # waiting. Its coroutine is started by hand; when it would wait, the
                        # batch is handed on, then the coroutine awaited. (Not with a
                        # message_timeout: its timer, started with the coroutine, would
                        # cancel a wait for room in the queue.)
                        reading = receive(timeout)
                        try:
                            waiting = reading.send(None)
                        except StopIteration as done:
                            msg = done.value
                        else:
                            try:
                                await self._hand_over(batch, size, offer_many, put)
                            except BaseException:
                                reading.close()
                                raise
                            size, seen = 0, False
                            msg = await _go_on(reading, waiting)
                except TimeoutError:
                    on_timeout(self._timeout_error())
                    continue
            kind = msg[0]  # indexing: cheaper than attributes or unpacking a namedtuple
            data = msg[1]
            if kind is _TEXT:
                seen = True
                if not data.isascii():  # ASCII is valid UTF-8: most frames stop here
                    await self._hand_over(batch, size, offer_many, put)  # those before it
                    size = 0
                    await self._check_text(ws, data)
                if (
                    screen
                    and data[where] in may_be
                    and data.startswith(prefixes)
                    and intercept(data)  # type: ignore[misc]
                ):
                    continue
                append(data)
            elif kind is _BINARY:
                seen = True
                append(BinaryFrame(data))
            else:
                if seen:  # the public path's batch: handed on before a close could end it
                    await self._hand_over(batch, size, offer_many, put)
                    size, seen = 0, False
                self._last_control_at = time.monotonic()
                if await self._control_frame(ws, msg):
                    continue
                return False
            size += len(data)

    async def _hand_over(
        self,
        batch: list[bytes | BinaryFrame],
        size: int,
        offer_many: Callable[[list[bytes | BinaryFrame]], int],
        put: Callable[[bytes | BinaryFrame], Awaitable[None]],
    ) -> None:
        """``pump``'s hand-over of ``batch`` (``size`` bytes): stamped and counted once,
        offered at once, the rest awaited frame by frame; ``batch`` is emptied."""
        for frame in self._offer_batch(batch, size, offer_many):
            await put(frame)

    def _account(self, count: int, size: int) -> None:
        """The hook's stamp and counters of a batch of ``count`` frames, ``size`` bytes."""
        self._last_data_at = time.monotonic()
        self.messages_in += count
        self.bytes_in += size

    def _offer_batch(
        self,
        batch: list[bytes | BinaryFrame],
        size: int,
        offer_many: Callable[[list[bytes | BinaryFrame]], int],
    ) -> list[bytes | BinaryFrame] | tuple[()]:
        """The hand-over's part that does not wait: ``batch`` (``size`` bytes) stamped,
        counted and offered, then emptied; the frames refused (the queue is full), which
        the caller must ``put`` in order before it hands over anything else."""
        self._last_data_at = time.monotonic()
        count = len(batch)
        if not count:
            return ()  # every frame was intercepted: stamped, not counted
        self.messages_in += count
        self.bytes_in += size
        taken = offer_many(batch)
        refused = batch[taken:] if taken < count else ()
        batch.clear()
        return refused

    async def _check_text(self, ws: aiohttp.ClientWebSocketResponse[bool], data: bytes) -> None:
        """Return when ``data`` (a text frame's payload) is valid UTF-8; otherwise fail the
        connection with 1007 and raise ``ProtocolViolationError``."""
        try:
            data.decode()
            return
        except UnicodeDecodeError as exc:
            error = ProtocolViolationError(
                f"{self._display_url}: received a text frame that is not valid UTF-8 "
                f"({exc.reason} at byte {exc.start} of {len(data)}); connection failed with "
                f"{_INVALID_TEXT}",
                code=_INVALID_TEXT,
            )
            error.__cause__ = exc
        await self._close_with(ws, _INVALID_TEXT, b"invalid UTF-8 in a text frame")
        logger.info("%s", error)
        raise error

    async def _close_with(
        self, ws: aiohttp.ClientWebSocketResponse[bool], code: int, reason: bytes
    ) -> None:
        """Send a close frame with ``code`` and ``reason`` and drop the link (to _Fail the
        WebSocket Connection_, RFC 6455 §7.1.7, or to answer the server's close frame); the
        handshake is given ``close_timeout`` seconds at most."""
        self._connected = False
        try:
            async with asyncio.timeout(self._close_timeout):
                await ws.close(code=code, message=reason)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            logger.debug("%s: close %d not completed: %r", self._display_url, code, exc)

    def _timeout_error(self) -> MessageTimeoutError:
        return MessageTimeoutError(
            f"{self._display_url}: no message within message_timeout={self._message_timeout} s"
        )

    async def _control_frame(self, ws: aiohttp.ClientWebSocketResponse[bool], msg: Any) -> bool:
        """Handle a non-data frame: True to read on, False when closed by ``disconnect()``;
        raises the error tree's error when the connection ended otherwise."""
        kind = msg.type
        if kind is _PING:
            logger.debug("%s: ping received, answering", self._display_url)
            pacer = self.pacer
            if pacer is not None:  # the venue counts pongs too
                await pacer.turn(urgent=True)
                pacer.sent(time.monotonic())
            await ws.pong(msg.data)
            self._written()
            return True
        if kind is _PONG:
            logger.debug("%s: pong received", self._display_url)
            return True
        if self._ws is None:  # disconnect() raced with this read
            return False
        self._connected = False
        if kind is _CLOSE:
            raise await self._answer_close(ws, msg)
        raise self._closed_error(ws, msg)

    async def _answer_close(self, ws: aiohttp.ClientWebSocketResponse[bool], msg: Any) -> Exception:
        """Answer the server's close frame (RFC 6455 §5.5.1): echo its code and reason, or
        1002 for a code that no endpoint may send (§7.4); return the error that ends the
        connection. aiohttp has checked the reason's UTF-8 and rejected codes below 3000
        that it does not know; its list admits 1006, which must never be sent."""
        code, reason = msg.data, msg.extra or ""
        if code and not _valid_close_code(code):
            await self._close_with(ws, _PROTOCOL_ERROR, b"invalid close code")
            error = ProtocolViolationError(
                f"{self._display_url}: the server closed with code {code}, which no endpoint "
                f"may send; connection failed with {_PROTOCOL_ERROR}",
                code=_PROTOCOL_ERROR,
            )
            logger.info("%s", error)
            return error
        # A close frame without a code (0 here) is answered with 1000: aiohttp sends a code.
        await self._close_with(ws, code or 1000, reason.encode())
        return self._closed_error(ws, msg)

    def _closed_error(self, ws: aiohttp.ClientWebSocketResponse[bool], msg: Any) -> Exception:
        if msg.type is aiohttp.WSMsgType.ERROR:
            exc = msg.data
            if isinstance(exc, aiohttp.WebSocketError) and exc.code == 1009:
                found = _SIZE_RE.search(str(exc))
                size = int(found.group(1)) if found else None
                err: Exception = MessageTooBigError(
                    f"{self._display_url}: received a message of {size if size else 'over'} bytes, "
                    f"above max_msg_size={self._max_msg_size}; raise max_msg_size if the venue "
                    "really sends such messages",
                    size=size,
                    limit=self._max_msg_size,
                )
            elif isinstance(exc, aiohttp.WebSocketError):
                # aiohttp's reader found a protocol violation and closed with its code.
                err = ProtocolViolationError(
                    f"{self._display_url}: protocol violation by the server ({exc}); "
                    f"connection failed with {exc.code}",
                    code=exc.code,
                )
            else:
                err = ConnectionClosedError(
                    f"{self._display_url}: connection failed ({exc!r})", code=ws.close_code or 1006
                )
            err.__cause__ = exc if isinstance(exc, BaseException) else None
            logger.info("%s: %s", self._display_url, err)
            return err
        code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
        reason = msg.extra if msg.type is aiohttp.WSMsgType.CLOSE else ""
        if not isinstance(code, int):
            code = 1006  # no close frame: the link broke
        elif code == 0:
            code = 1005  # a close frame without a status code (RFC 6455, 7.1.5)
        logger.info("%s: closed by the server (code %s %s)", self._display_url, code, reason or "")
        return ConnectionClosedError(
            f"{self._display_url}: connection closed "
            f"(code {code}{', ' + reason if reason else ''})",
            code=code,
            reason=reason or "",
        )
