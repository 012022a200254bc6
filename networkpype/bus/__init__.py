"""The market-data bus: collectors in many processes publish into NATS JetStream, consumers
read it with the library's API. Needs the ``nats`` extra (``pip install 'networkpype[nats]'``).

* :class:`Collector` (``networkpype collect``): a share of a venue's topics, taken through
  partition leases in a JetStream KV bucket, kept alive with the sharded manager, published
  per topic with de-duplicating message ids and the gap records in order.
* :class:`BusConsumer` (``networkpype consume``): ``iter_messages(events=True)`` and
  ``stream(topic)`` over a durable JetStream consumer.
* :class:`BusDiffSource`: order books (``networkpype.books.OrderBookMaintainer``) fed from the
  bus, snapshots still over REST from the venue.
* :class:`LocalNatsServer`: a loopback ``nats-server`` for tests, the demo and benchmarks.

Subjects, headers and records: :mod:`networkpype.bus.records`; partitions:
:mod:`networkpype.bus.partitions` (both pure: they import no NATS client). The names below
are imported on first use, so that those two work without the extra; a missing extra is an
``ImportError`` naming it. The deployment guide is docs/deployment.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from networkpype.bus._nats import StreamSettings
    from networkpype.bus.books import BusDiffSource
    from networkpype.bus.collector import Collector, CollectorSettings, CollectorStatistics
    from networkpype.bus.consumer import BusConsumer, BusResponse, ConsumerStatistics
    from networkpype.bus.leases import LeaseSettings
    from networkpype.bus.publisher import PublishSettings
    from networkpype.bus.records import (
        PartitionAcquired,
        PartitionReleased,
        PublishDropped,
        SequenceGap,
    )
    from networkpype.bus.server import LocalNatsServer

__all__ = [
    "BusConsumer",
    "BusDiffSource",
    "BusResponse",
    "Collector",
    "CollectorSettings",
    "CollectorStatistics",
    "ConsumerStatistics",
    "LeaseSettings",
    "LocalNatsServer",
    "PartitionAcquired",
    "PartitionReleased",
    "PublishDropped",
    "PublishSettings",
    "SequenceGap",
    "StreamSettings",
]

_WHERE = {
    "StreamSettings": "_nats",
    "Collector": "collector",
    "CollectorSettings": "collector",
    "CollectorStatistics": "collector",
    "BusConsumer": "consumer",
    "BusDiffSource": "books",
    "BusResponse": "consumer",
    "ConsumerStatistics": "consumer",
    "LeaseSettings": "leases",
    "PublishSettings": "publisher",
    "PartitionAcquired": "records",
    "PartitionReleased": "records",
    "PublishDropped": "records",
    "SequenceGap": "records",
    "LocalNatsServer": "server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'networkpype.bus' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f"networkpype.bus.{module}"), name)
    except ModuleNotFoundError as exc:
        if exc.name == "nats" or (exc.name or "").startswith("nats."):
            raise ImportError(
                "networkpype.bus needs the NATS client: pip install 'networkpype[nats]'"
            ) from exc
        raise
    globals()[name] = value
    return value
