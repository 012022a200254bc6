"""``Auth``: the hook that signs requests marked ``is_auth_required``.

Subclass it and implement both methods. The managers call them on their private copy of a
request, after the pre-processors and right before sending, every time the request is sent:
a subscription replayed after a reconnection is signed afresh (new timestamp, new
signature), never resent with its old bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from networkpype.time_synchronizer import TimeSynchronizer

if TYPE_CHECKING:  # only for annotations: the REST and WebSocket stacks import this module
    from networkpype.rest.request import RESTRequest
    from networkpype.websocket.request import WebSocketRequest

__all__ = ["Auth"]


class Auth(ABC):
    """Signs outbound requests; ``time_provider`` gives the time to sign with.

    ``time_provider`` is a :class:`TimeSynchronizer` (a fresh one, i.e. local time, when
    ``None``); use ``self.time_provider.time()`` (Unix seconds) for timestamps, so that they
    follow the server's clock once it is synchronised.
    """

    def __init__(self, time_provider: TimeSynchronizer | None = None) -> None:
        self.time_provider: TimeSynchronizer = (
            time_provider if time_provider is not None else TimeSynchronizer()
        )

    @abstractmethod
    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        """Return the request to send, signed (changing ``request`` in place is safe)."""

    @abstractmethod
    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        """Return the message to send, signed (changing ``request`` in place is safe)."""
