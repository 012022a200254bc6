"""A pre-processor that makes sure the server time is known before any request goes out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from networkpype.rest.processor.base import RESTPreProcessor
from networkpype.rest.request import RESTRequest
from networkpype.time_synchronizer import TimeSynchronizer

__all__ = ["TimeSynchronizerRESTPreProcessor"]


class TimeSynchronizerRESTPreProcessor(RESTPreProcessor):
    """Initialises ``synchronizer`` before the first request, so signatures use server time.

    ``time_provider`` is a callable returning an awaitable of the server's Unix time in
    milliseconds (typically an ``async def`` that asks the venue's time endpoint). It is
    called only while the synchronizer has no sample; concurrent first requests share one
    call (see ``TimeSynchronizer.update_server_time_if_not_initialized``). Its errors
    propagate and the request is not sent. The request passes through unchanged.
    """

    def __init__(
        self, synchronizer: TimeSynchronizer, time_provider: Callable[[], Awaitable[float]]
    ) -> None:
        self._synchronizer = synchronizer
        self._time_provider = time_provider

    async def pre_process(self, request: RESTRequest) -> RESTRequest:
        if not self._synchronizer.is_initialized:
            await self._synchronizer.update_server_time_if_not_initialized(self._time_provider())
        return request
