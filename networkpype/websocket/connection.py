"""The seed's import path of :class:`WebSocketConnection`; the socket layer lives in
:mod:`networkpype.wire.connection`."""

from networkpype.wire.connection import (
    DEFAULT_COMPRESS,
    DEFAULT_MAX_MSG_SIZE,
    MAX_RETRY_AFTER,
    BinaryFrame,
    WebSocketConnection,
    check_ws_url,
    close_reason,
    compress_window_bits,
    translate_connect_error,
)

__all__ = [
    "DEFAULT_COMPRESS",
    "DEFAULT_MAX_MSG_SIZE",
    "MAX_RETRY_AFTER",
    "BinaryFrame",
    "WebSocketConnection",
    "check_ws_url",
    "close_reason",
    "compress_window_bits",
    "translate_connect_error",
]
