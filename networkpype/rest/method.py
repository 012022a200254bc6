"""HTTP methods of the REST stack."""

from __future__ import annotations

from enum import Enum

__all__ = ["RESTMethod"]


class RESTMethod(Enum):
    """An HTTP verb; ``str(RESTMethod.GET) == "GET"`` and ``.value`` is the same string."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"

    def __str__(self) -> str:
        return self.value
