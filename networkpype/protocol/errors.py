"""The one error tree of networkpype.

Every error the library raises derives from :class:`NetworkPypeError`. Where the seed's API
promises a built-in exception, the project's error subclasses it too, so ``except
ConnectionError`` and ``except TimeoutError`` in user code keep working::

    NetworkPypeError
    ├── UsageError                      local: the program asked for something impossible
    │   ├── AlreadyConnectedError       (RuntimeError)  connect() while connected
    │   ├── NotConnectedError           (ConnectionError) send()/receive() while not connected
    │   ├── ConnectAbortedError         (ConnectionError) disconnect() while connect() waited
    │   ├── BlockingCallError           (RuntimeError)  blocking get() on the event-loop thread
    │   ├── ConsumerOverflowError       (BufferError)   overflow="error" and the consumer lagged
    │   └── ConfigurationError          (ValueError)    a bad setting or argument
    │       └── UnknownRateLimitError   (KeyError)      a throttler_limit_id nobody declared
    └── RemoteError                     remote: the network or the far end
        ├── RetryableError              worth another try after a backoff
        │   ├── ConnectionFailedError   (ConnectionError) could not open the socket
        │   ├── ConnectionClosedError   (ConnectionError) the far end closed / the link broke
        │   │   └── ProtocolViolationError  the far end broke RFC 6455: we failed the link
        │   ├── HandshakeError          (ConnectionError) HTTP status instead of an upgrade
        │   ├── MessageTimeoutError     (TimeoutError)    no message within message_timeout
        │   ├── LivenessTimeoutError    (TimeoutError)    no pong / no data: the link is dead
        │   ├── MessageTooBigError                        a frame above max_msg_size
        │   └── BusUnavailableError     (ConnectionError) NATS could not be reached in time
        └── FatalError                  retrying cannot help; a person must act
            ├── HandshakeRejectedError  (ConnectionError) 401/403/404 on the handshake
            ├── CertificateError        (ConnectionError) TLS verification failed
            ├── InvalidURLError         (ValueError)      not a ws:// or wss:// URL
            └── GaveUpError             (ConnectionError) the supervisor stopped retrying

Causes are chained with ``raise ... from cause``. Which errors the supervisor retries, and how
soon, is decided by ``networkpype.supervisor.policy``; the split above is the default.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AlreadyConnectedError",
    "BlockingCallError",
    "BusUnavailableError",
    "CertificateError",
    "ConfigurationError",
    "ConnectAbortedError",
    "ConnectionClosedError",
    "ConnectionFailedError",
    "ConsumerOverflowError",
    "FatalError",
    "GaveUpError",
    "HandshakeError",
    "HandshakeRejectedError",
    "InvalidURLError",
    "LivenessTimeoutError",
    "MessageTimeoutError",
    "MessageTooBigError",
    "NetworkPypeError",
    "NotConnectedError",
    "ProtocolViolationError",
    "RemoteError",
    "RetryableError",
    "UnknownRateLimitError",
    "UsageError",
]


class NetworkPypeError(Exception):
    """Root of every error networkpype raises."""


class UsageError(NetworkPypeError):
    """The calling program asked for something the current state does not allow."""


class AlreadyConnectedError(UsageError, RuntimeError):
    """``connect()`` was called on a connection that is already open; disconnect first."""


class NotConnectedError(UsageError, ConnectionError):
    """The operation needs an open connection; call ``connect()`` first."""


class ConnectAbortedError(UsageError, ConnectionError):
    """``disconnect()`` (or the manager's shutdown) ended a ``connect()`` that was still
    opening: the socket it was opening is closed. Only the program's own stop causes it; a
    cancellation of the task that called ``connect()`` raises ``CancelledError`` instead."""


class BlockingCallError(UsageError, RuntimeError):
    """A blocking wait was attempted on a thread that runs an event loop.

    Blocking there would deadlock: the result can only be produced by that same loop.
    ``await`` the future instead, or call from another thread.
    """


class ConsumerOverflowError(UsageError, BufferError):
    """A consumer queue with ``overflow="error"`` was full: the consumer is too slow."""


class ConfigurationError(UsageError, ValueError):
    """A setting or argument is out of range or inconsistent; the message says which."""


class UnknownRateLimitError(ConfigurationError, KeyError):
    """A ``throttler_limit_id`` that no ``RateLimit`` given to the throttler declares."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RemoteError(NetworkPypeError):
    """The network or the far end failed."""


class RetryableError(RemoteError):
    """A failure that a later attempt may not repeat (network, server restart, timeout)."""


class ConnectionFailedError(RetryableError, ConnectionError):
    """The socket could not be opened (refused, unreachable, DNS, reset during handshake)."""


class ConnectionClosedError(RetryableError, ConnectionError):
    """The connection was closed by the far end or broke.

    ``code`` is the WebSocket close code when a close frame arrived (1006 when the link broke
    without one), ``reason`` the close reason text.
    """

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ProtocolViolationError(ConnectionClosedError):
    """The far end broke RFC 6455 and the connection was failed with ``code``: 1007 for a
    text frame (or close reason) that is not valid UTF-8, 1002 for a reserved opcode, an RSV
    bit without an extension, an invalid or reserved close code, a malformed frame. Nothing
    received after the offending frame is delivered. Retried like the close code it carries:
    a glitch a healthy venue may produce once."""


class HandshakeError(RetryableError, ConnectionError):
    """The server answered the upgrade request with an HTTP status instead of 101.

    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers: Mapping[str, str] = dict(headers or {})
        self.retry_after = retry_after


class MessageTimeoutError(RetryableError, TimeoutError):
    """No message arrived within ``message_timeout`` seconds."""


class LivenessTimeoutError(RetryableError, TimeoutError):
    """The link looks dead: no pong within ``pong_timeout`` of a ping (half-open), or no data
    within ``no_data_timeout``. The connection is replaced."""


class FatalError(RemoteError):
    """A failure that retrying cannot fix: credentials, certificates, addresses, limits."""


class HandshakeRejectedError(FatalError, ConnectionError):
    """The server refused the upgrade for good (HTTP 401, 403 or 404)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class CertificateError(FatalError, ConnectionError):
    """The server's TLS certificate failed verification (pass ``verify_ssl=False`` only for
    a server you trust)."""


class InvalidURLError(FatalError, ValueError):
    """The URL is not a usable ``ws://`` or ``wss://`` address."""


class MessageTooBigError(RetryableError):
    """A received message exceeded the configured maximum size. The connection ends (1009);
    under supervision it is reopened, and a server that sends one on every connection is
    stopped by the restart intensity."""

    def __init__(self, message: str, *, size: int | None, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class GaveUpError(FatalError, ConnectionError):
    """The supervisor stopped restarting a connection; ``__cause__`` is the last failure."""


class BusUnavailableError(RetryableError, ConnectionError):
    """No NATS server of the market-data bus (``networkpype.bus``) answered within the time
    allowed; the message names the servers tried (credentials redacted)."""
