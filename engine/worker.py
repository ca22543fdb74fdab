"""The engine process: settles payments from the deposit work queue, expires orders and claims, and
refreshes exchange rates. Any number of engine processes may run; the queue and the expiry jobs take
rows with FOR UPDATE SKIP LOCKED and every transition locks its payment and order rows."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import structlog
from prometheus_client import Counter, Gauge, Histogram
from web3.exceptions import Web3Exception

from beanpay import idempotency, queries
from beanpay.batchloop import BatchLoop
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.chains.jsonrpc import RpcError, RpcUnavailable
from beanpay.config import Settings
from beanpay.db import RIDE_OUT, Database
from beanpay.engine import carts, ledger
from beanpay.engine.expiry import expire_claims, expire_orders
from beanpay.engine.invalidation import Invalidator
from beanpay.engine.prices.providers import RateUnavailable
from beanpay.engine.prices.service import RateService
from beanpay.engine.settlement import Settlement, settle_many
from beanpay.engine.transfers import evm, tracking, watchdog
from beanpay.listen import listen
from beanpay.tasks import supervise

log = structlog.get_logger("engine")

SETTLED = Counter("beanpay_engine_payment_transitions_total", "Payment status changes", ["status"])
QUEUE_AGE = Histogram("beanpay_engine_queue_wait_seconds", "Time from deposit change to settlement",
                      buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
BACKLOG = Gauge("beanpay_engine_queue_backlog", "Addresses waiting to be settled (last batch size)")
EXPIRED = Counter("beanpay_engine_expired_total", "Orders and claims expired", ["kind"])
FAILURES = Counter("beanpay_engine_failures_total", "Settlement attempts that failed and were re-queued")
TRANSFERS_SENT = Counter("beanpay_engine_transfers_sent_total",
                         "Refund and payout transactions a payout hot wallet broadcast")
PRUNED = Counter("beanpay_engine_pruned_total", "Expired rows deleted by maintenance", ["kind"])
IN_DEBT = Gauge("beanpay_custodial_debt_shops", "Shops whose custodial balance a reorg or a fee took below zero",
                ["chain", "asset"])
DEBT = Gauge("beanpay_custodial_debt_base_units", "What shops in debt owe the platform, in base units",
             ["chain", "asset"])

CHANNEL = "beanpay_payments"
SQL = queries.load("beanpay.engine", "queue.sql")
MAINTENANCE_SECONDS = 60.0
CART_KEEP = dt.timedelta(days=1)


async def settle_batch(db: Database, settings: Settings, invalidator: Invalidator | None = None) -> int:
    """Settle up to a batch of queued changes in one transaction (payments, and refunds arriving at
    their customers' addresses): the whole batch at once, and only if
    that fails, address by address in savepoints, so one bad address is re-queued for later instead of
    blocking the others."""
    done = Settlement()
    secret = settings.jwt_secret or ""
    async with db.transaction() as conn:
        rows = await conn.fetch(SQL.claim, settings.engine_batch_size)
        now = dt.datetime.now(dt.UTC)
        oldest: dict[tuple[str, str], dt.datetime] = {}
        for row in rows:
            key = (row["chain"], row["address"])
            oldest[key] = min(oldest.get(key, row["queued_at"]), row["queued_at"])
        keys = sorted(oldest)
        try:
            async with conn.transaction():
                done = await settle_many(conn, keys, now=now, tolerance_bps=settings.underpay_tolerance_bps)
                if done.unmatched:  # only where no payment is: the hot path pays nothing for refunds
                    await tracking.follow(conn, done.unmatched, secret=secret)
        except Exception as exc:
            log.warning("batch settlement failed; settling one by one", addresses=len(keys), error=repr(exc))
            for chain, address in keys:
                try:
                    async with conn.transaction():
                        one = await settle_many(conn, [(chain, address)], now=now,
                                                tolerance_bps=settings.underpay_tolerance_bps)
                        if one.unmatched:
                            await tracking.follow(conn, one.unmatched, secret=secret)
                    done.changed += one.changed
                    done.stock += one.stock
                except Exception as error:
                    FAILURES.inc()
                    log.error("settlement failed; re-queued", chain=chain, address=address, error=repr(error))
                    await conn.execute(SQL.requeue, chain, address)
        for at in oldest.values():
            QUEUE_AGE.observe(max(0.0, (now - at).total_seconds()))
        for outcome in done.changed:
            if outcome.status is not None:
                SETTLED.labels(outcome.status).inc()
        BACKLOG.set(len(rows))
    if invalidator is not None:
        await invalidator.stock_moved(done.stock)
    return len(rows)


# what a node's absence raises (its RPC over HTTP, its JSON-RPC errors): ridden out like the database's
NODE_AWAY: tuple[type[BaseException], ...] = (*RIDE_OUT, aiohttp.ClientError, Web3Exception, RpcError, RpcUnavailable)
PRICES_AWAY: tuple[type[BaseException], ...] = (*RIDE_OUT, aiohttp.ClientError, RateUnavailable)


class Engine:
    def __init__(self, settings: Settings, db: Database, rates: RateService | None = None) -> None:
        self.settings, self.db = settings, db
        self.rates = rates
        self.invalidator = Invalidator(settings.redis_dsn, settings.redis_timeout_seconds)
        self._wake = asyncio.Event()
        self._settling: list[BatchLoop] = []

    @property
    def failing(self) -> bool:
        """The last settlement round could not reach the database (readiness says so)."""
        return any(loop.failing for loop in self._settling)

    async def run(self, stop: asyncio.Event) -> None:
        """Every loop is supervised: one that dies (a bug, not a dependency away) stops the engine, and the
        process says why."""
        s = self.settings
        self._settling = [BatchLoop(f"engine-payments-{i}", self._settle, s.engine_batch_size, s.engine_poll_seconds,
                                    wake=self._wake) for i in range(s.engine_workers)]
        loops = {"engine-listen": listen(s.dsn, CHANNEL, self._wake, stop),
                 **{loop.name: loop.run(stop) for loop in self._settling},
                 "engine-expiry": BatchLoop("engine-expiry", self._expire, 1, s.engine_poll_seconds).run(stop),
                 "engine-maintenance": BatchLoop("engine-maintenance", self._maintain, 1,
                                                 MAINTENANCE_SECONDS).run(stop),
                 "engine-refund-sends": BatchLoop("engine-refund-sends", self._send_refunds, 1 << 30,
                                                  s.engine_poll_seconds, away=NODE_AWAY).run(stop),
                 "engine-refund-watch": self._refund_watch(stop)}
        if self.rates is not None:
            loops["engine-prices"] = BatchLoop("engine-prices", self._refresh_prices, 1, s.price_refresh_seconds,
                                               away=PRICES_AWAY).run(stop)
        try:
            await supervise(loops)
        finally:
            await self.invalidator.close()
            if self.rates is not None:
                await self.rates.close()

    async def _settle(self) -> int:
        return await settle_batch(self.db, self.settings, self.invalidator)

    async def _expire(self) -> int:
        while (expired := await expire_orders(self.db, self.settings.engine_batch_size))[0]:
            EXPIRED.labels("order").inc(expired[0])
            await self.invalidator.stock_moved(expired[1])
        while (n := await expire_claims(self.db, self.settings.engine_batch_size)) > 0:
            EXPIRED.labels("claim").inc(n)
        return 0

    async def _send_refunds(self) -> int:
        """Approved refunds a payout hot wallet sends (signed and recorded first, then broadcast)."""
        sent = await evm.send_due(self.db, self.settings)
        if sent:
            TRANSFERS_SENT.inc(sent)
        return 0

    async def _refund_watch(self, stop: asyncio.Event) -> None:
        """Refund transactions the network dropped or replaced fail, to be sent again."""
        s = self.settings
        btc = BitcoinRpc(s.btc_rpc, s.btcd_rpc_user, s.btcd_rpc_password or "")

        async def watch() -> int:
            await watchdog.fail_dropped(self.db, s, btc, after=dt.timedelta(seconds=s.refund_drop_seconds))
            return 0

        try:
            await BatchLoop("engine-refund-watch", watch, 1, max(s.engine_poll_seconds, 30.0), away=NODE_AWAY).run(stop)
        finally:
            await btc.close()

    async def _maintain(self) -> int:
        """Housekeeping no request waits for: expired idempotency keys and carts are pruned, debts counted."""
        while (n := await idempotency.prune(self.db)) > 0:
            PRUNED.labels("idempotency_key").inc(n)
        # an expired cart is ignored when read already; its rows go a day later
        while (n := await carts.purge_expired(self.db, CART_KEEP, 1000)) > 0:
            PRUNED.labels("cart").inc(n)
        await self._debts()
        return 0

    async def _debts(self) -> None:
        """Debts a reorg's reversal (or a fee) left: refunds and payouts never make one (the database
        refuses them), so any is money the platform paid out and a person must look at."""
        async with self.db.acquire() as conn:
            found = await ledger.debts(conn)
        IN_DEBT.clear()
        DEBT.clear()
        for d in found:
            IN_DEBT.labels(d.chain, d.asset).set(d.shops)
            DEBT.labels(d.chain, d.asset).set(d.owed)
            log.error("shops in debt to the platform", chain=d.chain, asset=d.asset, shops=d.shops, owed=str(d.owed))

    async def _refresh_prices(self) -> int:
        assert self.rates is not None
        changed = await self.rates.refresh(self.db)
        if changed:
            log.info("rates updated", pairs=[f"{r.asset}:{r.fiat}" for r in changed])
        return 0
