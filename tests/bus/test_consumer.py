"""BusConsumer against a real nats-server: durable resume, gaps, crashes, per-topic streams."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import pytest

from networkpype.bus import BusConsumer, BusResponse, SequenceGap, records
from networkpype.bus._nats import StreamSettings, connect, ensure_stream
from networkpype.bus.server import LocalNatsServer
from networkpype.protocol.errors import ConfigurationError
from networkpype.protocol.events import Disconnected

STREAM = StreamSettings(name="T", prefix="md")


async def _publish(server: LocalNatsServer, items: list[tuple[str, int | None, object]]) -> None:
    """Publish data (topic, seq, payload) or records (topic, None, record)."""
    nc = await connect(server.url, name="publisher", deadline=5.0)
    try:
        js = nc.jetstream()
        await ensure_stream(js, STREAM)
        for i, (topic, seq, body) in enumerate(items):
            subject = records.subject_for("md", "sim", topic)
            if seq is None:
                headers = {records.HEADER_MSG_ID: f"r{i}", records.HEADER_KIND: "record"}
                await js.publish(subject, records.encode_record(body), headers=headers)  # type: ignore[arg-type]
            else:
                headers = {records.HEADER_MSG_ID: f"{topic}:{seq}", records.HEADER_SEQ: str(seq)}
                await js.publish(subject, msgspec.json.encode(body), headers=headers)
    finally:
        await nc.close()


def _data(topic: str, seqs: range | list[int]) -> list[tuple[str, int | None, object]]:
    return [(topic, s, {"stream": topic, "seq": s}) for s in seqs]


def _consumer(server: LocalNatsServer, **kw: object) -> BusConsumer:
    return BusConsumer("sim", nats_urls=(server.url,), stream=STREAM, **kw)  # type: ignore[arg-type]


async def _take(consumer: BusConsumer, count: int, events: bool = True) -> list[object]:
    out: list[object] = []
    async with asyncio.timeout(10):
        async for item in consumer.iter_messages(events=events):
            out.append(item)
            if len(out) == count:
                break
    return out


async def test_a_durable_consumer_resumes_after_its_last_message(
    nats_server: LocalNatsServer,
) -> None:
    await _publish(nats_server, _data("a", range(1, 301)))
    first = _consumer(nats_server, durable="d", batch=50)
    await first.connect()
    taken = await _take(first, 120)
    await first.disconnect()
    second = _consumer(nats_server, durable="d", batch=50)
    await second.connect()
    rest = await _take(second, 180)
    await second.disconnect()
    seqs = [m.seq for m in taken + rest if isinstance(m, BusResponse)]
    assert seqs == list(range(1, 301))  # nothing lost, nothing twice
    assert isinstance(taken[0], BusResponse) and taken[0].data == {"stream": "a", "seq": 1}
    assert taken[0].topic == "a" and taken[0].stream_seq == 1


async def test_a_crashed_consumer_loses_nothing_and_marks_what_comes_again(
    nats_server: LocalNatsServer,
) -> None:
    await _publish(nats_server, _data("a", range(1, 101)))
    crashed = _consumer(nats_server, durable="d", batch=30)
    await crashed.connect()
    taken = await _take(crashed, 45)  # 30 acknowledged (second batch started), 15 not
    assert crashed._nc is not None
    await crashed._nc.close()  # a crash: nothing more acknowledged
    again = _consumer(nats_server, durable="d", batch=30)
    await again.connect()
    rest = await _take(again, 70)
    await again.disconnect()
    assert [m.seq for m in rest] == list(range(31, 101))  # type: ignore[attr-defined]
    marked = [m.seq for m in rest if m.redelivered]  # type: ignore[attr-defined]
    # Delivered to the crashed reader (what it had handed out, 31..45, and what it had
    # fetched ahead), marked; nothing else.
    assert marked == list(range(31, 31 + len(marked))) and len(marked) >= 15
    assert {m.seq for m in taken} | {m.seq for m in rest} == set(range(1, 101))  # type: ignore[attr-defined]


async def test_a_durable_consumer_starts_again_after_a_crash_and_a_clean_stop(
    nats_server: LocalNatsServer,
) -> None:
    # The crash makes the next reader re-create the durable at its floor (a start sequence);
    # the reader after a clean stop must keep that consumer as it is: JetStream refuses to
    # change a deliver policy ("deliver policy can not be updated", error 10012).
    await _publish(nats_server, _data("a", range(1, 101)))
    crashed = _consumer(nats_server, durable="d", batch=30)
    await crashed.connect()
    await _take(crashed, 45)
    assert crashed._nc is not None
    await crashed._nc.close()
    again = _consumer(nats_server, durable="d", batch=30)
    await again.connect()
    await _take(again, 70)  # 31 to 100: everything acknowledged at disconnect()
    await again.disconnect()
    await _publish(nats_server, _data("a", range(101, 111)))
    third = _consumer(nats_server, durable="d", batch=30)
    await third.connect()
    rest = await _take(third, 10)
    await third.disconnect()
    assert [m.seq for m in rest] == list(range(101, 111))  # type: ignore[attr-defined]


async def test_sequence_gaps_are_reported_and_stale_messages_not_delivered(
    nats_server: LocalNatsServer,
) -> None:
    event = Disconnected(connection_id="c1/shard1", at=1.0, cause="reset", error="X")
    items = [*_data("a", [1, 2]), ("a", None, event), *_data("a", [5, 4, 6])]
    await _publish(nats_server, items)
    consumer = _consumer(nats_server)
    await consumer.connect()
    got = await _take(consumer, 6)
    await consumer.disconnect()
    kinds = [
        (type(i).__name__, getattr(i, "seq", None) or getattr(i, "missed", None)) for i in got
    ]
    assert kinds == [
        ("BusResponse", 1), ("BusResponse", 2), ("Disconnected", None),
        ("SequenceGap", 2), ("BusResponse", 5), ("BusResponse", 6),
    ]  # fmt: skip
    gap = got[3]
    assert isinstance(gap, SequenceGap) and (gap.topic, gap.after, gap.missed) == ("a", 2, 2)
    stats = consumer.statistics()
    assert (stats.gaps, stats.missed, stats.stale, stats.messages) == (1, 2, 1, 4)


async def test_without_events_only_data(nats_server: LocalNatsServer) -> None:
    await _publish(nats_server, [*_data("a", [1]), *_data("a", [3])])
    consumer = _consumer(nats_server)
    await consumer.connect()
    got = await _take(consumer, 2, events=False)
    await consumer.disconnect()
    assert [type(i) for i in got] == [BusResponse, BusResponse]


async def test_a_topic_stream_has_its_topic_only(nats_server: LocalNatsServer) -> None:
    await _publish(nats_server, [*_data("a", [1, 2]), *_data("b.x", [1, 2, 3]), *_data("a", [3])])
    consumer = _consumer(nats_server, durable="d")
    await consumer.connect()
    got: list[BusResponse] = []
    async with asyncio.timeout(10):
        async for item in consumer.stream("b.x"):
            got.append(item)
            if len(got) == 3:
                break
    await consumer.disconnect()
    assert [(m.topic, m.seq) for m in got] == [("b.x", 1), ("b.x", 2), ("b.x", 3)]


def test_bad_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="venue"):
        BusConsumer("a.b")
    with pytest.raises(ConfigurationError, match="deliver"):
        BusConsumer("sim", deliver="latest")


class _Proxy:
    """A TCP proxy on loopback to ``port``; :meth:`blackhole` swallows what the server
    sends from now on, :meth:`cut` closes every connection (the client reconnects) and
    forwards again."""

    def __init__(self, port: int) -> None:
        self.port, self.swallowed, self._holes = port, 0, False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"nats://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, down: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    if down and self._holes:
                        self.swallowed += len(data)
                        continue
                    dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    def blackhole(self) -> None:
        self._holes = True

    def cut(self) -> None:
        self._holes = False
        writers, self._writers = self._writers, []
        for w in writers:
            w.close()


async def test_what_was_delivered_into_a_broken_connection_comes_again(
    nats_server: LocalNatsServer,
) -> None:
    # The server hands a batch to the consumer's connection, which breaks before the batch
    # arrives. JetStream counts it as delivered: left as it is, the next pull brings newer
    # messages and acknowledging them (AckAll) acknowledges the lost batch unseen; the
    # consumer reported a SequenceGap for messages the bus holds (issue 14, item 3).
    await _publish(nats_server, _data("a", range(1, 61)))
    proxy = _Proxy(nats_server.port)
    async with proxy as url:
        consumer = BusConsumer("sim", nats_urls=(url,), stream=STREAM, durable="d", batch=10)
        await consumer.connect()
        try:
            items = consumer.iter_messages(events=True)
            got = [await items.__anext__() for _ in range(10)]  # the first batch
            proxy.blackhole()
            # Asking for the 11th pulls the second batch, which the proxy swallows.
            nxt = asyncio.ensure_future(items.__anext__())
            nc = await connect(nats_server.url, name="observer", deadline=5.0)
            try:
                js = nc.jetstream()

                async def delivered() -> int:
                    info = await js.consumer_info(STREAM.name, "d")
                    return info.delivered.stream_seq if info.delivered else 0

                async with asyncio.timeout(10):
                    while await delivered() < 20:
                        await asyncio.sleep(0.01)
            finally:
                await nc.close()
            proxy.cut()  # the client reconnects through the proxy
            async with asyncio.timeout(20):
                got.append(await nxt)
                while getattr(got[-1], "seq", None) != 60:  # the last one published
                    got.append(await items.__anext__())
        finally:
            await consumer.disconnect()
    assert not [g for g in got if isinstance(g, SequenceGap)]
    assert [g.seq for g in got] == list(range(1, 61))
