"""The engine process: settles payments from the deposit work queue, expires orders and claims, and
refreshes exchange rates. Any number of engine processes may run; the queue and the expiry jobs take
rows with FOR UPDATE SKIP LOCKED and every transition locks its payment and order rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import structlog
from prometheus_client import Counter, Gauge, Histogram

from beanpay.config import Settings
from beanpay.db import Pool, transaction
from beanpay.engine.expiry import expire_claims, expire_orders
from beanpay.engine.invalidation import Invalidator
from beanpay.engine.prices.service import RateService
from beanpay.engine.settlement import settle_many
from beanpay.listen import listen, sleep, wait_wake

log = structlog.get_logger("engine")

SETTLED = Counter("beanpay_engine_payment_transitions_total", "Payment status changes", ["status"])
QUEUE_AGE = Histogram("beanpay_engine_queue_wait_seconds", "Time from deposit change to settlement",
                      buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
BACKLOG = Gauge("beanpay_engine_queue_backlog", "Addresses waiting to be settled (last batch size)")
EXPIRED = Counter("beanpay_engine_expired_total", "Orders and claims expired", ["kind"])
FAILURES = Counter("beanpay_engine_failures_total", "Settlement attempts that failed and were re-queued")

CHANNEL = "beanpay_payments"

# the oldest queued changes, skipping rows another engine holds; deleted in this transaction, so a
# crash before commit leaves them queued. A change still uncommitted in the indexer is invisible
# here and gets its own row, so it is always settled after it commits.
CLAIM = """DELETE FROM payment_queue WHERE id IN (
               SELECT id FROM payment_queue WHERE queued_at <= clock_timestamp()
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING chain, address, queued_at"""
REQUEUE = "INSERT INTO payment_queue (chain, address, queued_at) VALUES ($1, $2, clock_timestamp() + interval '5 s')"


async def settle_batch(pool: Pool, settings: Settings, invalidator: Invalidator | None = None) -> int:
    """Settle up to a batch of queued changes in one transaction: the whole batch at once, and only if
    that fails, address by address in savepoints, so one bad address is re-queued for later instead of
    blocking the others."""
    changed_shops = set()
    async with transaction(pool) as conn:
        rows = await conn.fetch(CLAIM, settings.engine_batch_size)
        now = dt.datetime.now(dt.UTC)
        oldest: dict[tuple[str, str], dt.datetime] = {}
        for row in rows:
            key = (row["chain"], row["address"])
            oldest[key] = min(oldest.get(key, row["queued_at"]), row["queued_at"])
        keys = sorted(oldest)
        try:
            async with conn.transaction():
                outcomes = await settle_many(conn, keys, now=now, tolerance_bps=settings.underpay_tolerance_bps)
        except Exception as exc:
            log.warning("batch settlement failed; settling one by one", addresses=len(keys), error=repr(exc))
            outcomes = []
            for chain, address in keys:
                try:
                    async with conn.transaction():
                        outcomes += await settle_many(conn, [(chain, address)], now=now,
                                                      tolerance_bps=settings.underpay_tolerance_bps)
                except Exception as one:
                    FAILURES.inc()
                    log.error("settlement failed; re-queued", chain=chain, address=address, error=repr(one))
                    await conn.execute(REQUEUE, chain, address)
        for at in oldest.values():
            QUEUE_AGE.observe(max(0.0, (now - at).total_seconds()))
        for outcome in outcomes:
            if outcome.status is not None:
                SETTLED.labels(outcome.status).inc()
                changed_shops.add(outcome.shop_id)
        BACKLOG.set(len(rows))
    if invalidator is not None:
        await invalidator.shops_stock(pool, changed_shops)
    return len(rows)


class Engine:
    def __init__(self, settings: Settings, pool: Pool, rates: RateService | None = None) -> None:
        self.settings, self.pool = settings, pool
        self.rates = rates
        self.invalidator = Invalidator(settings.redis_dsn, settings.redis_timeout_seconds)
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(listen(self.settings.dsn, CHANNEL, self._wake, stop), name="engine-listen"),
                 *(asyncio.create_task(self._payments(stop), name=f"engine-payments-{i}")
                   for i in range(self.settings.engine_workers)),
                 asyncio.create_task(self._expiry(stop), name="engine-expiry")]
        if self.rates is not None:
            tasks.append(asyncio.create_task(self._prices(stop), name="engine-prices"))
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.invalidator.close()
            if self.rates is not None:
                await self.rates.close()

    async def _payments(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                n = await settle_batch(self.pool, self.settings, self.invalidator)
            except Exception as exc:
                log.warning("settlement batch failed", error=repr(exc))
                await sleep(stop, 1)
                continue
            if n < self.settings.engine_batch_size:
                await wait_wake(self._wake, self.settings.engine_poll_seconds)

    async def _expiry(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while shops := await expire_orders(self.pool, self.settings.engine_batch_size):
                    EXPIRED.labels("order").inc(len(shops))
                    await self.invalidator.shops_stock(self.pool, shops)
                while (n := await expire_claims(self.pool, self.settings.engine_batch_size)) > 0:
                    EXPIRED.labels("claim").inc(n)
            except Exception as exc:
                log.warning("expiry run failed", error=repr(exc))
            await sleep(stop, self.settings.engine_poll_seconds)

    async def _prices(self, stop: asyncio.Event) -> None:
        assert self.rates is not None
        while not stop.is_set():
            started = time.monotonic()
            try:
                changed = await self.rates.refresh(self.pool)
                if changed:
                    log.info("rates updated", pairs=[f"{r.asset}:{r.fiat}" for r in changed])
            except Exception as exc:
                log.warning("rate refresh failed", error=repr(exc))
            await sleep(stop, max(0.0, self.settings.price_refresh_seconds - (time.monotonic() - started)))
