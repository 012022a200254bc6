"""Subjects, message ids and records: pure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from networkpype.bus import records
from networkpype.protocol.events import Disconnected


@pytest.mark.parametrize(
    "topic", ["btcusdt@trade", "a.b", "x*y>z", "with space", "50%", "ünïcode@depth"]
)
def test_token_round_trip_and_no_reserved_character(topic: str) -> None:
    token = records.token_of(topic)
    assert not any(c in token for c in ".*> \t")
    assert records.topic_of_token(token) == topic


def test_plain_topics_are_not_escaped() -> None:
    assert records.subject_for("md", "sim", "btcusdt@trade") == "md.sim.btcusdt@trade"
    assert records.venue_filter("md", "sim") == "md.sim.>"
    assert records.control_subject("md", "sim", "c1") == "md.sim._ctl.c1"


def test_empty_topic_and_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        records.token_of("")
    for bad in ("", "a.b", "_x", "a b", "a*"):
        with pytest.raises(ValueError, match="must be a non-empty name"):
            records.check_name("venue", bad)


def test_data_ids_collapse_the_same_event_only() -> None:
    a = records.data_msg_id("sim", "btcusdt@trade", 7, b'{"x":1}')
    assert a == "sim:btcusdt@trade:7"
    assert records.data_msg_id("sim", "btcusdt@trade", 7, b"other bytes") == a
    assert records.data_msg_id("sim", "btcusdt@trade", 8, b'{"x":1}') != a
    # Without a sequence number: the payload decides.
    h1 = records.data_msg_id("sim", "t", None, b"one")
    assert h1 == records.data_msg_id("sim", "t", None, b"one")
    assert h1 != records.data_msg_id("sim", "t", None, b"two")
    assert h1 != records.data_msg_id("sim", "u", None, b"one")


def test_records_round_trip_with_the_library_events() -> None:
    items: list[records.BusRecord] = [
        Disconnected(connection_id="c1/shard1", at=1.0, cause="reset", error="X"),
        records.PartitionAcquired(at=2.0, partition=3, collector_id="c2", previous_owner="c1"),
        records.PartitionReleased(at=3.0, partition=3, collector_id="c2", cause="stop"),
        records.PublishDropped(at=4.0, topic="t", collector_id="c2", count=5, first_seq=1),
    ]
    for item in items:
        assert records.decode_record(records.encode_record(item)) == item


def test_records_import_no_nats_client_and_no_asyncio() -> None:
    code = (
        "import sys, networkpype.bus.records, networkpype.bus.partitions;"
        "print(','.join(m for m in ('nats', 'asyncio', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
