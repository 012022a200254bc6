"""Outbound REST requests.

A request says what to send and how the pipeline treats it: ``throttler_limit_id`` names the
rate limit it counts against and ``is_auth_required`` routes it through
``Auth.rest_authenticate``. The pipeline works on a deep copy (:meth:`RESTRequest.copy`), so
pre-processors and auth never change the caller's object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from networkpype.rest.method import RESTMethod

__all__ = ["RESTRequest"]


@dataclass
class RESTRequest:
    """One HTTP request.

    ``url`` is the absolute URL sent; ``endpoint_url`` is a path that a pre-processor may
    resolve into ``url`` (the connection itself needs ``url``). ``params`` become the query
    string; ``data`` is the body as given to aiohttp (a ``str`` or ``bytes`` is sent as is, a
    ``dict`` form-encoded; ``RESTManager.execute_request`` turns a ``dict`` into JSON first).
    """

    method: RESTMethod
    url: str | None = None
    endpoint_url: str | None = None
    params: Mapping[str, Any] | None = None
    data: Any = None
    headers: Mapping[str, str] | None = None
    is_auth_required: bool = False
    throttler_limit_id: str | None = None

    def copy(self) -> RESTRequest:
        """A deep copy that pre-processors and auth may change freely."""
        return copy.deepcopy(self)
