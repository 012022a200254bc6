"""Hooks on the WebSocket pipeline: pre-processors for outbound requests, post-processors for
inbound responses. Both are ``async`` and run in list order."""

from __future__ import annotations

from abc import ABC, abstractmethod

from networkpype.wire.request import WebSocketRequest
from networkpype.wire.response import WebSocketResponse

__all__ = ["WebSocketPostProcessor", "WebSocketPreProcessor"]


class WebSocketPreProcessor(ABC):
    """Changes an outbound request before it is authenticated and sent.

    It receives the pipeline's private copy, so changing it in place is safe; return the
    request to pass on (the same object or a new one).
    """

    @abstractmethod
    async def pre_process(self, request: WebSocketRequest) -> WebSocketRequest: ...


class WebSocketPostProcessor(ABC):
    """Changes an inbound response before the application sees it.

    Set ``response.data = None`` to tell the application to ignore the message.
    """

    @abstractmethod
    async def post_process(self, response: WebSocketResponse) -> WebSocketResponse: ...
