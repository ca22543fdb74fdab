"""The relay against the real Kafka: exactly once per event id, in order per key, with Kafka
stopped for a while and with several relays side by side."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import msgspec
import pytest

from beanpay.db import connect
from beanpay.deploy.devstack.kafka import Kafka
from beanpay.events import catalog
from beanpay.events.outbox import CHANNEL, emit
from beanpay.events.relay import Relay
from tests.conftest import open_test_db, wait_for
from tests.integration.kafka_reader import read_topic

TOPIC = "coffee-shop-events"


class Seq(msgspec.Struct):
    seq: int


async def _emit_backlog(db, keys: list[str], per_key: int) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Interleaved events for several keys; returns each key's event ids in commit order."""
    expected: dict[str, list[str]] = defaultdict(list)
    async with db.acquire() as conn:
        for seq in range(per_key):
            async with conn.transaction():
                for key in keys:
                    event_id = await emit(conn, catalog.SHOP_UPDATED, key, Seq(seq))
                    expected[key].append(str(event_id))
    return expected


async def _run_relays(settings, count: int, until) -> list[int]:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    pools = [await open_test_db(settings.dsn, min_size=1, max_size=2) for _ in range(count)]
    relays = [Relay(settings, p) for p in pools]
    published = [0] * count

    def counting(i: int, relay: Relay):  # type: ignore[no-untyped-def]
        original = relay.publish_batch

        async def wrapped() -> int:
            n = await original()
            published[i] += n
            return n

        relay.publish_batch = wrapped  # type: ignore[method-assign]

    for i, relay in enumerate(relays):
        counting(i, relay)
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    try:
        await until(relays)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for p in pools:
            await p.close()
    return published


def _check_exactly_once_in_order(settings, expected: dict[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    messages = read_topic(settings.kafka_servers, TOPIC, set(expected))
    by_key: dict[str, list[str]] = defaultdict(list)
    for m in messages:
        assert m["envelope"]["aggregate_id"] == m["key"]
        by_key[m["key"]].append(m["envelope"]["event_id"])
    all_ids = [e for ids in by_key.values() for e in ids]
    assert len(all_ids) == len(set(all_ids)), "an event id reached Kafka twice"
    for key, ids in expected.items():
        assert by_key[key] == ids, f"key {key}: Kafka holds {len(by_key[key])} events, expected {len(ids)} in order"


async def _backlog_empty(db, keys) -> bool:  # type: ignore[no-untyped-def]
    left = await db.fetchval(
        "SELECT count(*) FROM event_outbox WHERE aggregate_id = ANY($1::text[])", keys)
    return bool(left == 0)


async def test_relays_side_by_side_publish_each_event_once_in_key_order(settings, db) -> None:
    keys = [str(uuid.uuid4()) for _ in range(12)]
    expected = await _emit_backlog(db, keys, per_key=60)
    # small batches and three relays make claims overlap often (a reordering race was found this way)
    fast = msgspec.structs.replace(settings, relay_batch_size=10, relay_poll_seconds=0.2)
    published = await _run_relays(fast, 3, lambda _: wait_for(lambda: _backlog_empty(db, keys), timeout=120))
    assert sum(published) >= len(keys) * 60
    _check_exactly_once_in_order(settings, expected)
    envelope = read_topic(settings.kafka_servers, TOPIC, {keys[0]})[0]["envelope"]
    assert envelope["version"] == 1 and envelope["type"] == "shop.updated" and envelope["payload"] == {"seq": 0}


@pytest.mark.timeout(240)
async def test_kafka_down_then_back_loses_and_duplicates_nothing(settings, db) -> None:
    """A relay publishing happily sees Kafka stop under it, keeps failing while it is down, and
    delivers the backlog once it is back; a second relay joins half-way."""
    kafka = Kafka(settings)
    keys = [str(uuid.uuid4()) for _ in range(3)]
    fast = msgspec.structs.replace(settings, relay_poll_seconds=0.2, relay_publish_timeout_seconds=3)
    stop = asyncio.Event()
    pool = await open_test_db(settings.dsn, min_size=1, max_size=2)
    relay = Relay(fast, pool)
    task = asyncio.create_task(relay.run(stop))
    try:
        before = await _emit_backlog(db, keys, per_key=10)
        await wait_for(lambda: _backlog_empty(db, keys), timeout=60)
        await asyncio.to_thread(kafka.stop)
        try:
            during = await _emit_backlog(db, keys, per_key=10)

            async def relay_failing() -> bool:
                return relay.failures >= 2

            await wait_for(relay_failing, timeout=90)
            assert not await _backlog_empty(db, keys), "nothing can be published while Kafka is down"
        finally:
            await asyncio.to_thread(kafka.start)  # its health probe runs an event loop of its own
        after = await _emit_backlog(db, keys, per_key=5)
        await _run_relays(fast, 1, lambda _: wait_for(lambda: _backlog_empty(db, keys), timeout=120))
    finally:
        stop.set()
        await task
        await pool.close()
    assert relay.failures == 0
    _check_exactly_once_in_order(settings, {k: before[k] + during[k] + after[k] for k in keys})


async def test_a_claim_that_skipped_a_keys_older_rows_is_not_published(db) -> None:
    """The race, made deterministic: a claim that got a key's later rows but not its oldest unpublished
    ones (another relay committed mid-scan) must leave that key for the next batch."""
    from beanpay.events.relay import OutboxRow, _key_prefixes

    k, other = str(uuid.uuid4()), str(uuid.uuid4())
    await _emit_backlog(db, [k, other], per_key=3)
    rows_sql = """SELECT id, event_id, event_type, topic, aggregate_type, aggregate_id, payload::text AS payload,
                         occurred_at FROM event_outbox WHERE id = ANY($1::bigint[]) ORDER BY id"""
    ids = {key: [r["id"] for r in await db.fetch(
        "SELECT id FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", key)] for key in (k, other)}
    skipped_oldest = [OutboxRow(**r) for r in await db.fetch(rows_sql, ids[k][1:] + ids[other])]
    async with db.acquire() as conn:
        kept = await _key_prefixes(conn, skipped_oldest)
        assert [r.id for r in kept] == ids[other]
        prefix = [OutboxRow(**r) for r in await db.fetch(rows_sql, ids[k][:2])]
        assert [r.id for r in await _key_prefixes(conn, prefix)] == ids[k][:2]
    await db.execute("DELETE FROM event_outbox WHERE aggregate_id = ANY($1::text[])",
                     [k, other])  # keep this test's rows out of the relays' way


async def test_commits_wake_the_relay_after_commit_coalesced(settings, db) -> None:
    """The wake-up is sent after commit, on its own (a NOTIFY inside the transaction would make
    commits wait for each other), and a burst of commits sends a few, not one each."""
    listener = await connect(settings)
    heard: list[float] = []
    await listener.add_listener(CHANNEL, lambda *_: heard.append(time.monotonic()))
    try:
        key = str(uuid.uuid4())
        async with db.transaction() as conn:
            await emit(conn, catalog.SHOP_UPDATED, key, Seq(0))
            await asyncio.sleep(0.3)
            assert heard == [], "nothing is sent before the commit"
        await wait_for(lambda: _now(bool(heard)), timeout=5)

        heard.clear()

        async def one(seq: int) -> None:
            async with db.transaction() as conn:
                await emit(conn, catalog.SHOP_UPDATED, key, Seq(seq))

        await asyncio.gather(*(one(i) for i in range(100)))
        await asyncio.sleep(1.0)
        assert 1 <= len(heard) < 50, f"{len(heard)} wake-ups for 100 commits"
    finally:
        await listener.close()


async def test_an_idle_relay_publishes_on_the_wake_up_without_polling(settings, db) -> None:
    slow_poll = msgspec.structs.replace(settings, relay_poll_seconds=60)
    key = str(uuid.uuid4())

    async def until(_: list[Relay]) -> None:
        await asyncio.sleep(1.5)  # the relay's first pass is done: it now waits for a wake-up or 60 s
        await _emit_backlog(db, [key], per_key=3)
        await wait_for(lambda: _backlog_empty(db, [key]), timeout=10)

    await _run_relays(slow_poll, 1, until)


async def _now(value: bool) -> bool:
    return value


async def test_published_events_wait_in_the_journal_and_a_replay_publishes_them_again_in_order(settings, db) -> None:
    from beanpay.events.relay import replay

    keys = [str(uuid.uuid4()) for _ in range(3)]
    expected = await _emit_backlog(db, keys, per_key=4)
    ids = {r["event_id"]: r["id"] for r in await db.fetch(
        "SELECT id, event_id::text FROM event_outbox WHERE aggregate_id = ANY($1::text[])", keys)}
    await _run_relays(settings, 1, lambda _: wait_for(lambda: _backlog_empty(db, keys), timeout=60))
    journal = {r["event_id"]: r["outbox_id"] for r in await db.fetch(
        "SELECT outbox_id, event_id::text FROM event_journal WHERE aggregate_id = ANY($1::text[])", keys)}
    assert journal == ids  # every published event, under its outbox id

    # an old entry (past the window) is not replayed; the recent ones come back under their first ids
    old = expected[keys[0]][0]
    await db.execute("UPDATE event_journal SET published_at = now() - interval '1 hour' WHERE event_id = $1",
                     uuid.UUID(old))
    assert await replay(db, 600) >= len(ids) - 1  # (and whatever earlier tests published)
    requeued = {r["event_id"]: r["id"] for r in await db.fetch(
        "SELECT id, event_id::text FROM event_outbox WHERE aggregate_id = ANY($1::text[])", keys)}
    assert requeued == {e: i for e, i in ids.items() if e != old}
    await _run_relays(settings, 1, lambda _: wait_for(lambda: _backlog_empty(db, keys), timeout=60))
    by_key: dict[str, list[str]] = defaultdict(list)
    for m in read_topic(settings.kafka_servers, TOPIC, set(keys)):
        by_key[m["key"]].append(m["envelope"]["event_id"])
    for key in keys:  # published once, then again in the same order (the old one not again)
        again = [e for e in expected[key] if e != old]
        assert by_key[key] == expected[key] + again
    # and a relay purges what is older than the journal's window
    assert await db.fetchval("SELECT count(*) FROM event_journal WHERE event_id = $1", uuid.UUID(old)) == 0
    assert await db.fetchval("SELECT count(*) FROM event_journal WHERE aggregate_id = ANY($1::text[])",
                             keys) == len(ids) - 1
