"""Hooks on the REST pipeline: pre-processors for outbound requests, post-processors for
inbound responses. Both are ``async`` and run in list order."""

from __future__ import annotations

from abc import ABC, abstractmethod

from networkpype.rest.request import RESTRequest
from networkpype.rest.response import RESTResponse

__all__ = ["RESTPostProcessor", "RESTPreProcessor"]


class RESTPreProcessor(ABC):
    """Changes an outbound request before it is authenticated and sent.

    It receives the pipeline's private copy, so changing it in place is safe; return the
    request to pass on (the same object or a new one).
    """

    @abstractmethod
    async def pre_process(self, request: RESTRequest) -> RESTRequest: ...


class RESTPostProcessor(ABC):
    """Inspects or replaces a response before the caller sees it; return the one to pass on."""

    @abstractmethod
    async def post_process(self, response: RESTResponse) -> RESTResponse: ...
