"""The REST stack: :class:`RESTManager` (the pipeline) over :class:`RESTConnection`
(one aiohttp exchange), with :class:`RESTRequest` / :class:`RESTResponse`."""

from networkpype.rest.connection import RESTConnection
from networkpype.rest.errors import RESTDecodeError, RESTStatusError, RESTTimeoutError
from networkpype.rest.manager import RESTManager
from networkpype.rest.method import RESTMethod
from networkpype.rest.request import RESTRequest
from networkpype.rest.response import RESTResponse

__all__ = [
    "RESTConnection",
    "RESTDecodeError",
    "RESTManager",
    "RESTMethod",
    "RESTRequest",
    "RESTResponse",
    "RESTStatusError",
    "RESTTimeoutError",
]
