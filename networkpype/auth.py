"""``Auth``: the hook that signs requests marked ``is_auth_required``.

Subclass it and implement what your venue signs: ``rest_authenticate``, ``ws_authenticate``
or both. As in NetworkPype, a subclass that implements only one can be made; the other raises
``NotImplementedError`` naming the class and the method when an auth-required request of that
kind is sent. The managers call them on their private copy of a request, after the
pre-processors and right before sending, every time the request is sent: a subscription
replayed after a reconnection is signed afresh (new timestamp, new signature), never resent
with its old bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from networkpype.time_synchronizer import TimeSynchronizer

if TYPE_CHECKING:  # only for annotations: the REST and WebSocket stacks import this module
    from networkpype.rest.request import RESTRequest
    from networkpype.wire.request import WebSocketRequest

__all__ = ["Auth"]


class Auth:
    """Signs outbound requests; ``time_provider`` gives the time to sign with.

    ``time_provider`` is a :class:`TimeSynchronizer` (a fresh one, i.e. local time, when
    ``None``); use ``self.time_provider.time()`` (Unix seconds) for timestamps, so that they
    follow the server's clock once it is synchronised.
    """

    def __init__(self, time_provider: TimeSynchronizer | None = None) -> None:
        self.time_provider: TimeSynchronizer = (
            time_provider if time_provider is not None else TimeSynchronizer()
        )

    async def rest_authenticate(self, request: RESTRequest) -> RESTRequest:
        """Return the request to send, signed (changing ``request`` in place is safe)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement rest_authenticate(): it cannot sign "
            "REST requests with is_auth_required=True; implement it or send them unsigned"
        )

    async def ws_authenticate(self, request: WebSocketRequest) -> WebSocketRequest:
        """Return the message to send, signed (changing ``request`` in place is safe)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement ws_authenticate(): it cannot sign "
            "WebSocket requests with is_auth_required=True; implement it or send them unsigned"
        )
