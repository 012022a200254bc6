"""Order books that stay correct: a snapshot over REST joined with the diff stream the way
the venue documents it, marked not valid at once on any break and resynced by itself.

``OrderBookMaintainer`` keeps the books over a ``ShardedWebSocketManager`` (or another
``DiffSource``: ``networkpype.bus.BusDiffSource`` reads the market-data bus) and a
``RESTManager``; venue rules are a small plug-in (``VenueRules``: ``BinanceSpotRules``,
``SequencedChecksumRules``); ``OrderBook`` and ``BookSync`` are the pure core. See
``docs/books.md``.
"""

from __future__ import annotations

from networkpype.books.binance import BinanceSpotRules
from networkpype.books.book import Level, OrderBook
from networkpype.books.errors import BookDataError, UnknownBookError
from networkpype.books.events import BookEvent, BookInvalid, BookResynced
from networkpype.books.maintainer import MaintainerStatistics, OrderBookMaintainer
from networkpype.books.rules import Diff, Relation, Snapshot, SnapshotRequest, VenueRules
from networkpype.books.sequenced import SequencedChecksumRules
from networkpype.books.settings import BookSettings
from networkpype.books.source import DiffSource, StreamBreak
from networkpype.books.sync import BookStatus, BookSync, Change
from networkpype.books.views import BookState, Depth, LiveBook, TopOfBook

__all__ = [
    "BinanceSpotRules",
    "BookDataError",
    "BookEvent",
    "BookInvalid",
    "BookResynced",
    "BookSettings",
    "BookState",
    "BookStatus",
    "BookSync",
    "Change",
    "Depth",
    "Diff",
    "DiffSource",
    "Level",
    "LiveBook",
    "MaintainerStatistics",
    "OrderBook",
    "OrderBookMaintainer",
    "Relation",
    "SequencedChecksumRules",
    "Snapshot",
    "SnapshotRequest",
    "StreamBreak",
    "TopOfBook",
    "UnknownBookError",
    "VenueRules",
]
