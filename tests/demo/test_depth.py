"""The simulator's ground-truth books (pure) and its depth venue over loopback: diff ids,
snapshots with weights, faults, and the audit of a client's book."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from networkpype.books.binance import BinanceSpotRules
from networkpype.books.sequenced import SequencedChecksumRules
from networkpype.books.sync import BookStatus, BookSync, Change
from networkpype.demo import ExchangeSimulator
from networkpype.demo.book_audit import BookAudit
from networkpype.demo.depth import DepthTruth, TruthReplica, checksum_of
from networkpype.demo.depth_venue import DepthVenue, WeightWindow

TIMEOUT = 2.0


def test_truth_steps_chain_their_ids_and_stay_within_the_window() -> None:
    truth = DepthTruth("btcusdt", levels=20)
    last = 0
    for _ in range(500):
        step = truth.step()
        assert step.first_id == last + 1 and step.last_id == last + len(step.changes) >= last + 1
        last = step.last_id
        assert len(truth.bids) <= 20 and len(truth.asks) <= 20
        assert max(truth.bids) < min(truth.asks)  # never crossed
    assert truth.update_id == last


def test_levels_at_and_replica_agree_with_the_book_as_it_was() -> None:
    truth = DepthTruth("ETHUSDT", levels=10, history=100)
    states = {}
    for _ in range(50):
        truth.step()
        states[truth.update_id] = (dict(truth.bids), dict(truth.asks))
    ids = sorted(states)
    for update_id in ids[::7]:
        assert truth.levels_at(update_id) == states[update_id]
    replica = TruthReplica(truth, ids[3])
    assert replica.advance_to(ids[40])
    bids, asks = states[ids[40]]
    assert replica.bids == {t / 100: q / 1000 for t, q in bids.items()}
    assert replica.asks == {t / 100: q / 1000 for t, q in asks.items()}
    assert not replica.advance_to(ids[40] + 10**9)  # not produced yet
    with pytest.raises(ValueError, match="no kept state"):
        truth.levels_at(ids[3] + 1 if ids[4] != ids[3] + 1 else -5)
    update_id, undone, old_bids, _ = truth.levels_back(2)
    assert (update_id, undone) == (ids[-3], 2) and old_bids == states[ids[-3]][0]


def test_history_is_bounded() -> None:
    truth = DepthTruth("X", levels=5, history=10)
    for _ in range(30):
        truth.step()
    with pytest.raises(ValueError, match="no kept state"):
        truth.levels_at(truth.oldest_id - 1)
    assert truth.levels_at(truth.oldest_id)  # the oldest kept state is still there


def test_weight_window_is_sliding() -> None:
    window = WeightWindow(10, 1.0)
    assert window.try_acquire(0.0, 5) and window.try_acquire(0.5, 5)
    assert not window.try_acquire(0.9, 1)
    assert window.retry_after(0.9, 1) == pytest.approx(0.1)
    assert window.try_acquire(1.0, 5)  # the first 5 left the window at 1.0
    assert window.used(1.0) == 10


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSimulator]:
    depth = DepthVenue(levels=20, rest_weight_limit=12, rest_weight_window=60.0)
    async with ExchangeSimulator(rate=50.0, depth=depth) as simulator:
        yield simulator


def rest_url(sim: ExchangeSimulator, query: str) -> str:
    return f"http://127.0.0.1:{sim.port}/api/v3/depth?{query}"


async def next_update(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=TIMEOUT)
        data = msgspec.json.decode(msg.data)
        if "U" in data:
            return data  # type: ignore[no-any-return]


async def test_diffs_and_snapshots_join_into_the_venues_book(sim: ExchangeSimulator) -> None:
    """A plain client, the pure BookSync of each plug-in, and the audit: the stream and the
    snapshot endpoint of the simulator make a book equal to its truth at every update."""
    binance = BookSync("BTCUSDT", BinanceSpotRules(limit=100), 0.0)
    sequenced = BookSync("BTCUSDT", SequencedChecksumRules(), 0.0)
    audit = BookAudit(sim.depth)
    audit_seq = BookAudit(sim.depth, ids="sequence")
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.url) as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1}')
        first = await next_update(ws)
        assert first["stream"] == "btcusdt@depth" and first["s"] == "BTCUSDT"
        for sync in (binance, sequenced):
            sync.on_diff(sync.rules.parse_diff(first), 0.0)
        async with session.get(rest_url(sim, "symbol=BTCUSDT&limit=100")) as response:
            assert response.status == 200
            snapshot = await response.json()
        assert snapshot["lastUpdateId"] >= first["u"] and snapshot["seq"] >= first["seq"]
        for sync in (binance, sequenced):
            sync.on_snapshot(sync.rules.parse_snapshot(snapshot), 0.0)
        previous = first
        for _ in range(30):
            data = await next_update(ws)
            assert data["U"] == previous["u"] + 1 and data["seq"] == previous["seq"] + 1
            assert data["c"] == data["c"] & 0xFFFFFFFF
            previous = data
            for sync in (binance, sequenced):
                change = sync.on_diff(sync.rules.parse_diff(data), 0.0)
                assert change is not Change.INVALIDATED, sync.reason
        for sync in (binance, sequenced):
            assert sync.status is BookStatus.VALID
        assert audit.check(_Audited(binance))
        assert audit_seq.check(_Audited(sequenced))
        assert sequenced.book.bid_levels == binance.book.bid_levels
    assert audit.checks == audit_seq.checks == 1
    assert audit.served_wrong == audit_seq.served_wrong == 0


class _Audited:
    def __init__(self, sync: BookSync) -> None:
        self.symbol, self.valid, self.order_book = sync.symbol, sync.valid, sync.book


async def test_the_audit_catches_a_wrong_book(sim: ExchangeSimulator) -> None:
    sync = BookSync("ETHUSDT", BinanceSpotRules(), 0.0)
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.url) as ws:
        await ws.send_str('{"method": "SUBSCRIBE", "params": ["ethusdt@depth"], "id": 1}')
        sync.on_diff(sync.rules.parse_diff(await next_update(ws)), 0.0)
        async with session.get(rest_url(sim, "symbol=ETHUSDT")) as response:
            sync.on_snapshot(sync.rules.parse_snapshot(await response.json()), 0.0)
        while not sync.valid:
            sync.on_diff(sync.rules.parse_diff(await next_update(ws)), 0.0)
    audit = BookAudit(sim.depth)
    assert audit.check(_Audited(sync))
    price = next(iter(sync.book.bid_levels))
    sync.book.apply([(price, 123.0)], [], sync.book.update_id)  # a bug, say
    assert not audit.check(_Audited(sync))
    assert audit.books_served_wrong == 1 and "venue" in audit.mismatches[0].detail


async def test_rest_weights_errors_and_faults(sim: ExchangeSimulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(rest_url(sim, "symbol=NOPE")) as response:
            assert response.status == 400 and (await response.json())["code"] == -1121
        async with session.get(rest_url(sim, "symbol=X&limit=0")) as response:
            assert response.status == 400 and (await response.json())["code"] == -1100
        async with session.ws_connect(sim.url) as ws:
            await ws.send_str('{"method": "SUBSCRIBE", "params": ["solusdt@depth"], "id": 1}')
            for _ in range(5):
                await next_update(ws)
            truth = sim.depth.truth("SOLUSDT")
            sim.depth.stale_snapshots(3, symbol="SOLUSDT")
            async with session.get(rest_url(sim, "symbol=solusdt&limit=5")) as response:
                stale = await response.json()
            assert stale["lastUpdateId"] < truth.update_id and len(stale["bids"]) == 5
            assert sim.depth.stale_served == 1
            before = (await next_update(ws))["u"]
            sim.depth.drop_diffs("SOLUSDT", 2)
            after = await next_update(ws)
            assert after["U"] > before + 1 and sim.depth.diffs_dropped == 2
        # 12 weight a minute: the unknown symbol and the stale snapshot cost 5 each.
        statuses = []
        for _ in range(3):
            async with session.get(rest_url(sim, "symbol=SOLUSDT&limit=100")) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
        assert 429 in statuses and sim.depth.rest_violations >= 1


def test_checksum_matches_the_client_plug_in() -> None:
    truth = DepthTruth("ADAUSDT", levels=15)
    for _ in range(5):
        truth.step()
    sync = BookSync("ADAUSDT", SequencedChecksumRules(), 0.0)
    bids = [(t / 100, q / 1000) for t, q in truth.bids.items()]
    asks = [(t / 100, q / 1000) for t, q in truth.asks.items()]
    sync.book.load(bids, asks, 5)
    assert sync.rules.verify(sync.book, checksum_of(truth.bids, truth.asks)) is None


async def test_depth_topics_of_one_symbol_share_its_book(sim: ExchangeSimulator) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.url) as ws:
        await ws.send_str(
            '{"method": "SUBSCRIBE", "params": ["xrpusdt@depth", "xrpusdt@depth@100ms"], "id": 1}'
        )
        seen: dict[str, list[int]] = {"xrpusdt@depth": [], "xrpusdt@depth@100ms": []}
        async with asyncio.timeout(TIMEOUT):
            while min(len(v) for v in seen.values()) < 3:
                data = await next_update(ws)
                seen[data["stream"]].append(data["U"])
    assert set(seen["xrpusdt@depth"]) & set(seen["xrpusdt@depth@100ms"])
