"""BusPublisher against a real nats-server: order, bounded in-flight, de-duplication, and
what happens while NATS is unreachable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.js import api as js_api

from networkpype.bus import records
from networkpype.bus._nats import StreamSettings, connect, ensure_stream
from networkpype.bus.publisher import BusPublisher, DropNotice, PublishSettings
from networkpype.bus.server import LocalNatsServer
from networkpype.protocol.errors import BusUnavailableError
from tests.timing import MS, wait_until

STREAM = StreamSettings(name="T", prefix="md")


def _notice(topic: str, notice: DropNotice) -> tuple[str, bytes, dict[str, str]]:
    record = records.PublishDropped(
        at=0.0,
        topic=topic,
        collector_id="c",
        count=notice.count,
        first_seq=notice.first_seq,
        last_seq=notice.last_seq,
    )
    headers = {records.HEADER_MSG_ID: f"drop-{notice.first_seq}", records.HEADER_KIND: "record"}
    return records.subject_for("md", "sim", topic), records.encode_record(record), headers


class Running:
    def __init__(self, publisher: BusPublisher, nc: NATS, task: asyncio.Task[None]) -> None:
        self.publisher, self.nc, self.task = publisher, nc, task

    def publish(self, seq: int, topic: str = "t1") -> None:
        self.publisher.publish_nowait(
            records.subject_for("md", "sim", topic),
            msgspec.json.encode({"stream": topic, "seq": seq}),
            {records.HEADER_MSG_ID: records.data_msg_id("sim", topic, seq, b""),
             records.HEADER_SEQ: str(seq)},
            topic=topic,
            seq=seq,
        )  # fmt: skip


async def _start(
    server: LocalNatsServer, settings: PublishSettings, *, stream: bool = True
) -> AsyncIterator[Running]:
    """A running publisher (``stream``: create the stream first)."""
    publisher = BusPublisher(settings, _notice)
    nc = await connect(
        server.url,
        name="test publisher",
        deadline=5.0,
        on_disconnected=publisher.on_disconnected,
        on_reconnected=publisher.on_reconnected,
    )
    if stream:
        await ensure_stream(nc.jetstream(), STREAM)
    await publisher.attach(nc)
    task = asyncio.get_running_loop().create_task(publisher.run())
    try:
        yield Running(publisher, nc, task)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await nc.close()


async def _stored(server: LocalNatsServer) -> list[tuple[dict[str, str], bytes]]:
    nc = await connect(server.url, name="reader", deadline=5.0)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            "md.>", stream=STREAM.name, config=js_api.ConsumerConfig(
                ack_policy=js_api.AckPolicy.NONE)
        )  # fmt: skip
        info = await js.stream_info(STREAM.name)
        out: list[tuple[dict[str, str], bytes]] = []
        while len(out) < info.state.messages:
            for msg in await sub.fetch(500, timeout=2.0):
                out.append((dict(msg.headers or {}), msg.data))
        return out
    finally:
        await nc.close()


async def test_everything_in_order_with_bounded_in_flight(nats_server: LocalNatsServer) -> None:
    async for running in _start(nats_server, PublishSettings(max_in_flight=20)):
        peak = 0
        for seq in range(1, 2001):
            running.publish(seq)
            if seq % 100 == 0:
                await asyncio.sleep(0)
                peak = max(peak, running.publisher.statistics().in_flight)
        for _ in range(200):
            peak = max(peak, running.publisher.statistics().in_flight)
            await asyncio.sleep(0)
        assert await running.publisher.flush(deadline=10.0)
        stats = running.publisher.statistics()
        assert (stats.published, stats.dropped, stats.rejected, stats.buffered) == (2000, 0, 0, 0)
        assert 0 < peak <= 20
    stored = await _stored(nats_server)
    assert [int(h[records.HEADER_SEQ]) for h, _ in stored] == list(range(1, 2001))


async def test_the_same_message_id_is_stored_once(nats_server: LocalNatsServer) -> None:
    async for running in _start(nats_server, PublishSettings()):
        for seq in (1, 2, 2, 3, 1):  # a standby or a rotation publishes these again
            running.publish(seq)
        assert await running.publisher.flush(deadline=10.0)
        stats = running.publisher.statistics()
        assert (stats.published, stats.duplicates) == (3, 2)
    assert len(await _stored(nats_server)) == 3


async def test_unreachable_nats_buffers_within_bound_and_reports_the_drops(
    nats_server: LocalNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="networkpype.bus.publisher")
    async for running in _start(nats_server, PublishSettings(max_buffer=100)):
        running.publish(1)
        assert await running.publisher.flush(deadline=10.0)
        nats_server.stop()
        publisher = running.publisher
        await wait_until(
            lambda: not publisher.statistics().connected,  # noqa: B023 (awaited here)
            "the client noticed",
            timeout=5000 * MS,
        )
        for seq in range(2, 302):
            running.publish(seq)
        stats = running.publisher.statistics()
        assert (stats.buffered, stats.dropped, stats.connected) == (100, 200, False)
        assert "buffer full" in caplog.text and "dropped 1 so far" in caplog.text
        nats_server.start()
        assert await running.publisher.flush(deadline=20.0)
        assert running.publisher.statistics().published == 101 + 1  # 1, 202..301, the notice
    stored = await _stored(nats_server)
    assert int(stored[0][0][records.HEADER_SEQ]) == 1
    notice = records.decode_record(stored[1][1])
    assert isinstance(notice, records.PublishDropped)
    assert (notice.topic, notice.count, notice.first_seq, notice.last_seq) == ("t1", 200, 2, 201)
    assert [int(h[records.HEADER_SEQ]) for h, _ in stored[2:]] == list(range(202, 302))


async def test_nats_unreachable_at_start_is_a_clear_error() -> None:
    server = LocalNatsServer()  # never started: nobody listens on its port
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(BusUnavailableError, match=f"unreachable at {server.url}"):
            await connect(server.url, name="test", deadline=1.0)
        assert loop.time() - started < 5.0
    finally:
        server.close()


async def test_a_message_jetstream_refuses_is_reported_not_dropped_silently(
    nats_server: LocalNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    nc = await connect(nats_server.url, name="setup", deadline=5.0)
    await nc.jetstream().add_stream(
        js_api.StreamConfig(name=STREAM.name, subjects=["md.>"], max_msg_size=200)
    )
    await nc.close()
    caplog.set_level(logging.WARNING, logger="networkpype.bus.publisher")
    async for running in _start(nats_server, PublishSettings()):
        running.publish(1)
        running.publisher.publish_nowait(
            records.subject_for("md", "sim", "t1"),
            b"x" * 500,  # above the stream's max_msg_size: refused (4xx)
            {records.HEADER_MSG_ID: "big", records.HEADER_SEQ: "2"},
            topic="t1",
            seq=2,
        )
        running.publish(3)
        assert await running.publisher.flush(deadline=10.0)
        assert running.publisher.statistics().rejected == 1
    assert "refused a message" in caplog.text
    stored = await _stored(nats_server)
    kinds = [h.get(records.HEADER_KIND, h.get(records.HEADER_SEQ)) for h, _ in stored]
    assert kinds == ["1", "3", "record"]  # the notice follows: the refusal came later
    notice = records.decode_record(stored[2][1])
    assert isinstance(notice, records.PublishDropped)
    assert (notice.count, notice.first_seq, notice.last_seq) == (1, 2, 2)


async def test_a_message_sent_again_after_a_server_error_keeps_its_place(
    nats_server: LocalNatsServer,
) -> None:
    # No stream yet (as while JetStream restarts, or a clustered stream elects its leader):
    # every publish is answered 503 and sent again later. Messages published once the
    # stream is back must not be stored ahead of those: a consumer would take the earlier
    # ones, stored late, for stale and drop them (issue 14, items 1 and 3).
    async for running in _start(nats_server, PublishSettings(), stream=False):
        publisher = running.publisher
        for seq in range(1, 6):
            running.publish(seq)
        await wait_until(
            lambda: publisher.statistics().resent >= 5,  # noqa: B023 (awaited here)
            "the first answers (503) came back",
        )
        await ensure_stream(running.nc.jetstream(), STREAM)
        for seq in range(6, 11):
            running.publish(seq)
        assert await publisher.flush(deadline=10.0)
        assert publisher.statistics().published == 10
    stored = await _stored(nats_server)
    assert [int(h[records.HEADER_SEQ]) for h, _ in stored] == list(range(1, 11))
