"""The seed's import path of the processor bases; they live in
:mod:`networkpype.wire.processor`."""

from networkpype.wire.processor import (
    WebSocketPostProcessor,
    WebSocketPreProcessor,
)

__all__ = [
    "WebSocketPostProcessor",
    "WebSocketPreProcessor",
]
