"""The outbox relay: publishes committed events to Kafka, in order per aggregate, and moves them from
the outbox to the journal once Kafka acknowledged them (the outbox is a queue; Kafka keeps the history;
the journal keeps the last minutes, which a promoted standby region publishes again into its own Kafka:
`replay`).

Several relays may run at once. Each batch is claimed with `FOR UPDATE SKIP LOCKED` plus a
transaction-scoped advisory lock per aggregate key, so two relays never hold events of the same
key at the same time: events are neither published twice by two relays nor reordered within a
key. A NOTIFY sent after each commit that wrote events wakes the relay (beanpay.wakeups); polling
is the guarantee. When Kafka is down the batch is
left unmarked and retried with backoff (or, once handed to the producer, waited for), so nothing
is lost and nothing is published twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid

import msgspec
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from beanpay import queries, tracing
from beanpay.batchloop import BatchLoop
from beanpay.config import Settings
from beanpay.db import RIDE_OUT, Connection, Database, Pool, create_pool, fetch_as
from beanpay.events import envelope
from beanpay.events.catalog import BY_NAME
from beanpay.events.outbox import CHANNEL
from beanpay.listen import listen
from beanpay.tasks import supervise

log = structlog.get_logger("relay")

PUBLISHED = Counter("beanpay_outbox_published_total", "Events published to Kafka", ["topic"])
FAILURES = Counter("beanpay_outbox_publish_failures_total", "Batches that could not be published")
BACKLOG = Gauge("beanpay_outbox_backlog", "Unpublished outbox events seen by the last claim")

SQL = queries.load("beanpay", "relay.sql")
GATHER_SECONDS = 0.02
PURGE_EVERY_SECONDS = 60.0


class NotPublished(Exception):
    """Kafka refused some events of a batch: they stay in the outbox (marked with why) and go again."""


class OutboxRow(msgspec.Struct):
    id: int
    event_id: uuid.UUID
    event_type: str
    topic: str
    aggregate_type: str
    aggregate_id: str
    payload: str
    occurred_at: dt.datetime
    trace_parent: str | None = None


class Relay:
    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings = settings
        self.pool = pool
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self.failures = 0  # consecutive failed batches; 0 when healthy
        self._purge_at = 0.0  # monotonic time of the next journal purge

    @property
    def ready(self) -> bool:
        return self.failures == 0

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            timeout_ms = int(self.settings.relay_publish_timeout_seconds * 1000)
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_servers, enable_idempotence=True, acks="all",
                linger_ms=2, request_timeout_ms=timeout_ms, retry_backoff_ms=200,
            )
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def publish_batch(self) -> int:
        """Publish one batch; return how many events were marked published."""
        producer = await self._get_producer()  # connect before taking any row locks
        async with self.pool.transaction() as conn:
            rows = await _key_prefixes(conn, await fetch_as(conn, SQL.claim_batch, OutboxRow,
                                                            self.settings.relay_batch_size))
            if not rows:
                return 0
            BACKLOG.set(len(rows))
            sends = []
            for r in rows:
                kind = BY_NAME.get(r.event_type)
                value = envelope.encode(envelope.Envelope(
                    version=envelope.ENVELOPE_VERSION, event_id=r.event_id, type=r.event_type,
                    schema_version=kind.version if kind else 1, occurred_at=r.occurred_at,
                    aggregate_type=r.aggregate_type, aggregate_id=r.aggregate_id,
                    payload=msgspec.Raw(r.payload.encode())))
                headers = [("event_id", str(r.event_id).encode()), ("event_type", r.event_type.encode())]
                trace = tracing.child_of(r.trace_parent, f"publish {r.topic}", kind=tracing.PRODUCER, attributes={
                    "messaging.destination.name": r.topic, "messaging.message.id": str(r.event_id),
                    "beanpay.event_type": r.event_type}) if tracing.enabled else r.trace_parent
                if trace is not None:  # the consumers continue the event's trace
                    headers.append((tracing.HEADER, trace.encode()))
                sends.append(await producer.send(r.topic, value=value, key=r.aggregate_id.encode(), headers=headers))
            results = await self._acknowledged(sends)
            done = [r for r, res in zip(rows, results, strict=True) if not isinstance(res, BaseException)]
            failed = [r.id for r, res in zip(rows, results, strict=True) if isinstance(res, BaseException)]
            if done:
                await conn.execute(SQL.mark_published, [r.id for r in done])
                for r in done:
                    PUBLISHED.labels(r.topic).inc()
            if failed:
                error = next(res for res in results if isinstance(res, BaseException))
                await conn.execute(SQL.mark_failed, failed, repr(error)[:500])
                raise NotPublished(f"{len(failed)} event(s) not published: {error!r}")
            return len(done)

    async def _acknowledged(self, sends: list[asyncio.Future[object]]) -> list[object]:
        """Wait for Kafka's acks however long it takes.

        The idempotent producer retries in-flight batches with their original sequence numbers
        until the broker is back, so waiting delivers each event exactly once. Giving up instead
        and re-sending later would publish duplicates of whatever had already reached the broker.
        Meanwhile the batch's rows stay locked; a stall is counted and logged every timeout.
        """
        pending = asyncio.gather(*sends, return_exceptions=True)
        waited = 0.0
        step = self.settings.relay_publish_timeout_seconds
        while True:
            done, _ = await asyncio.wait({pending}, timeout=step)
            if done:
                return list(pending.result())
            waited += step
            self.failures += 1
            FAILURES.inc()
            log.warning("Kafka is not acknowledging; waiting for it", events=len(sends), waited_s=waited)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        publisher = BatchLoop("relay", self._round, self.settings.relay_batch_size, self.settings.relay_poll_seconds,
                              wake=self._wake, away=(*RIDE_OUT, KafkaError, NotPublished), on_away=self._away,
                              after_idle=self._gather)
        try:
            await supervise({"relay-listener": listen(self.settings.dsn, CHANNEL, self._wake, stop),
                             "relay-publisher": publisher.run(stop)})
        finally:
            await self._drop_producer()

    async def _round(self) -> int:
        published = await self.publish_batch()
        await self._purge_journal()
        self.failures = 0
        if published < self.settings.relay_batch_size:
            BACKLOG.set(0)
        return published

    async def _away(self) -> None:
        """Kafka or Postgres trouble: the events stay in the outbox; a producer that met it is made anew."""
        FAILURES.inc()
        self.failures += 1
        await self._drop_producer()

    @staticmethod
    async def _gather() -> None:
        # every order commits an event: gathering for a moment makes one claim of many events instead of one
        # per event (a claim costs the same for 1 or 100)
        await asyncio.sleep(GATHER_SECONDS)

    async def _purge_journal(self) -> None:
        if time.monotonic() < self._purge_at:
            return
        async with self.pool.acquire() as conn:
            await conn.execute(SQL.purge_journal, self.settings.outbox_journal_seconds)
        self._purge_at = time.monotonic() + PURGE_EVERY_SECONDS


async def replay(db: Database, seconds: float) -> int:
    """Queue again, under their first ids, the events published in the last `seconds`; return how many.
    Run once a standby region is promoted: its Kafka was fed asynchronously and may lack the last events
    the lost region published. Consumers record by event id, so what they already had is skipped."""
    async with db.transaction() as conn:
        status = await conn.execute(SQL.replay_journal, seconds)
        conn.wake_after_commit(CHANNEL)
    return int(status.split()[-1])


async def replay_events(settings: Settings, seconds: float) -> int:
    """`replay` on a pool of its own (the CLI's, and a promotion's)."""
    pool = await create_pool(settings, max_size=1)
    try:
        return await replay(pool, seconds)
    finally:
        await pool.close()


async def _key_prefixes(conn: Connection, rows: list[OutboxRow]) -> list[OutboxRow]:
    """Keep only keys whose claimed rows are exactly their oldest unpublished rows.

    The claim evaluates its advisory lock row by row: if another relay commits a key mid-scan, this
    scan may have skipped that key's next rows and then taken later ones. Publishing those would
    reorder the key, so such a key is left for the next batch (its rows stay unpublished).
    """
    if not rows:
        return rows
    claimed: dict[str, list[int]] = {}
    for r in rows:
        claimed.setdefault(r.aggregate_id, []).append(r.id)
    keys = list(claimed)
    counts = {r["aggregate_id"]: r["n"] for r in await conn.fetch(
        SQL.unpublished_before, keys, [max(claimed[k]) for k in keys])}
    whole = {k for k in keys if counts.get(k) == len(claimed[k])}
    return rows if len(whole) == len(keys) else [r for r in rows if r.aggregate_id in whole]
