"""REST pipeline hooks: :mod:`~networkpype.rest.processor.base` and the built-in
:mod:`~networkpype.rest.processor.time_synchronizer` pre-processor."""

from networkpype.rest.processor.base import RESTPostProcessor, RESTPreProcessor
from networkpype.rest.processor.time_synchronizer import TimeSynchronizerRESTPreProcessor

__all__ = ["RESTPostProcessor", "RESTPreProcessor", "TimeSynchronizerRESTPreProcessor"]
