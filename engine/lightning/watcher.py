"""The lightning service: follows each node's settled invoices, watches the nodes' health, cancels
invoices that must no longer be paid, and pays refunds claimed with a Lightning invoice.

Settlement: lnd's invoice subscription from the settle index last committed for the node. Each settled
invoice is written, its payment settled (the same transition, ledger entries and events as an on-chain
deposit; Lightning has no confirmations, so it is final at once) and the node's checkpoint moved, in one
transaction. A crash before the commit replays the invoice from the node; after it, the checkpoint skips
it, and a replay that slipped through meets the guarded update: nothing is missed or credited twice.
One process leads each node (a Postgres advisory lock); any number may run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

from beanpay import queries
from beanpay.chains.lightning.lnd import Invoice, LndClient, LndError, LndUnavailable
from beanpay.config import Settings
from beanpay.db import RIDE_OUT, Database, fetch_as
from beanpay.engine.invalidation import Invalidator
from beanpay.engine.lightning import nodes, refunds
from beanpay.engine.lightning.nodes import NodeRow
from beanpay.engine.settlement import settle_many
from beanpay.leadership import leadership
from beanpay.listen import Backoff, sleep
from beanpay.tasks import supervise

log = structlog.get_logger("lightning")
SQL = queries.load("beanpay.engine", "lightning.sql")

SETTLED = Counter("beanpay_lightning_settled_total", "Settled invoices credited to payments")
SETTLE_SECONDS = Histogram("beanpay_lightning_settle_seconds", "From a settlement read off the node to its commit",
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
NODE_READY = Gauge("beanpay_lightning_node_ready", "1 while a node can take payments", ["node"])
NODE_INBOUND = Gauge("beanpay_lightning_node_inbound_msat", "What a node can receive over its channels", ["node"])
CANCELLED = Counter("beanpay_lightning_cancelled_total", "Invoices cancelled on their node")
NODES_SECONDS = 5.0  # how often new nodes (shops connecting theirs) are looked for
CANCEL_SECONDS = 2.0
REFUND_SECONDS = 1.0
SECOND_LOOK_SECONDS = 3.0
CHECKPOINT_EVERY = 256  # settlements of others' invoices between checkpoint writes


Identity = tuple[str, str, str, bytes | None]


def identity(node: NodeRow) -> Identity:
    """What makes a node row the node it is: where it is reached, who it is, how beanpay is let in."""
    return node.rest_url, node.pubkey, node.tls_cert, node.macaroon_sealed


def _label(node: NodeRow) -> str:
    return "platform" if node.custodial else f"shop:{node.shop_id}"


# a node or the database away: the second look is skipped, the next connect looks again
SECOND_LOOK_FAILURES: tuple[type[BaseException], ...] = (*RIDE_OUT, LndUnavailable, LndError)

class LightningWatcher:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.invalidator = Invalidator(settings.redis_dsn, settings.redis_timeout_seconds)
        self.problems: dict[str, str] = {}  # node -> why it cannot take payments now (/readyz says so)
        self._clients: dict[uuid.UUID, tuple[Identity, LndClient]] = {}
        self._follows: dict[uuid.UUID, tuple[Identity, asyncio.Task[None]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # the followers' own stop, set when the service ends however it ends (stopped, cancelled, a task died):
        # a follower whose cancellation a library swallowed still ends
        self._halt = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self._halt = asyncio.Event()  # a fresh one per run: followers of an earlier run are gone
        try:
            await supervise({"lightning-nodes": self._nodes(stop), "lightning-health": self._health(stop),
                             "lightning-cancel": self._cancel(stop), "lightning-refunds": self._refunds(stop)})
        finally:
            self._halt.set()
            tasks = [*(task for _, task in self._follows.values()), *self._background]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _, client in self._clients.values():
                await client.close()
            await self.invalidator.close()

    def client(self, node: NodeRow) -> LndClient:
        """A client for the node as its row says now (a shop that connected another node gets a new one)."""
        cached = self._clients.get(node.id)
        if cached is None or cached[0] != identity(node):
            if cached is not None:
                self._in_background(cached[1].close())
            cached = self._clients[node.id] = (identity(node), nodes.client_for(self.settings, node))
        return cached[1]

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watched(self) -> list[NodeRow]:
        async with self.db.acquire() as conn:
            return await fetch_as(conn, SQL.watched_nodes, NodeRow)

    async def _register_platform(self) -> None:
        """The platform's node gets its row (checkpoint, health) by its identity, asked of the node."""
        if not nodes.platform_configured(self.settings):
            return
        client = nodes.platform_client(self.settings)
        try:
            info = await client.info()
        finally:
            await client.close()
        async with self.db.acquire() as conn:
            await conn.execute(SQL.register_platform_node, uuid.uuid4(), self.settings.lightning_rest_url,
                               nodes.platform_cert(self.settings), info.identity_pubkey, info.alias[:64])

    async def _nodes(self, stop: asyncio.Event) -> None:
        registered, backoff = False, Backoff()
        while not stop.is_set():
            try:
                if not registered:
                    await self._register_platform()
                    registered = True
                for node in await self._watched():
                    following = self._follows.get(node.id)
                    if following is not None and following[0] != identity(node):
                        following[1].cancel()  # the shop connected another node: its stream says nothing more
                        following = None
                    if following is None or following[1].done():
                        if following is not None and not following[1].cancelled() and following[1].exception():
                            # a node's own failures are ridden out inside its follower: this is a bug, and the
                            # service stops (the supervisor says which task died) rather than limp on
                            raise following[1].exception()  # type: ignore[misc]
                        self._follows[node.id] = (identity(node), asyncio.create_task(
                            self._follow(node.id, self._halt), name=f"lightning-follow-{node.id}"))
                backoff.reset()
            except (LndUnavailable, LndError) as e:
                self.problems["platform"] = "the platform's Lightning node cannot be reached"
                log.warning("platform lightning node unreachable", error=str(e))
            except RIDE_OUT as e:
                log.warning("lightning: database unavailable", error=repr(e))
                await backoff.wait(stop)
                continue
            await sleep(stop, NODES_SECONDS)

    async def _follow(self, node_id: uuid.UUID, stop: asyncio.Event) -> None:
        """Lead this node's settlement stream, reconnecting after the node or the database went away."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                async with leadership(self.settings.dsn, "beanpay.lightning", str(node_id), stop) as lock:
                    if lock is None:
                        return
                    node = next((n for n in await self._watched() if n.id == node_id), None)
                    if node is None:
                        return
                    found = (await self.client(node).info()).identity_pubkey
                    if found != node.pubkey:  # the URL now serves another node: it is not believed
                        raise LndError(409, f"the node answering is {found}, not the node connected ({node.pubkey})")
                    await self.reconcile(node)
                    log.info("following lightning settlements", node=_label(node), after=node.settle_index)
                    # lnd replays what settled after a non-zero index only, and sends nothing at or below it:
                    # a new node's stream (index 0) is live only, so what settled between the look above and
                    # the stream's start is looked for once more, when the stream surely runs
                    if node.settle_index == 0:
                        second = asyncio.create_task(self._reconcile_later(node))
                        self._background.add(second)
                        second.add_done_callback(self._background.discard)
                    skipped, last = 0, 0  # others' settlements since the checkpoint was last written
                    async for invoice in self.client(node).subscribe_invoices(node.settle_index):
                        if invoice.state == "SETTLED" and invoice.settle_index > 0:
                            if await self.settle(node, invoice):
                                skipped = 0
                            else:
                                skipped, last = skipped + 1, invoice.settle_index
                            backoff.reset()
                        if skipped and (invoice.state != "SETTLED" or skipped >= CHECKPOINT_EVERY):
                            await self._advance(node_id, last)  # a replay after a crash re-skips the rest
                            skipped = 0
                        if stop.is_set():
                            return
            except (LndUnavailable, LndError) as e:
                log.warning("lightning settlement stream interrupted; resuming", node=str(node_id), error=str(e))
            except RIDE_OUT as e:
                log.warning("lightning: database unavailable; resuming", node=str(node_id), error=repr(e))
            await backoff.wait(stop)

    async def _advance(self, node_id: uuid.UUID, settle_index: int) -> None:
        async with self.db.acquire() as conn:
            await conn.execute(SQL.advance_checkpoint, node_id, settle_index)

    async def _reconcile_later(self, node: NodeRow) -> None:
        await asyncio.sleep(SECOND_LOOK_SECONDS)
        try:
            await self.reconcile(node)
        except SECOND_LOOK_FAILURES as e:
            log.warning("lightning: second look at open invoices failed; the next connect looks again",
                        error=repr(e))

    async def reconcile(self, node: NodeRow) -> int:
        """Ask the node about each invoice of ours still open on it, and settle those it says were paid: what
        settled while nothing watched is credited even where the stream's replay cannot reach (a new node).
        Returns how many were settled."""
        async with self.db.acquire() as conn:
            hashes = [r["payment_hash"] for r in await conn.fetch(SQL.open_on_node, node.id)]
        found = 0
        for payment_hash in hashes:
            invoice = await self.client(node).lookup_invoice(payment_hash)
            if invoice.state == "SETTLED" and await self.settle(node, invoice):
                found += 1
        return found

    async def settle(self, node: NodeRow, invoice: Invoice) -> bool:
        """One settled invoice, its payment and the node's checkpoint: one transaction. A node is believed only
        about the invoices it issued: what it says of others (a shop's node naming another shop's invoice), and
        its own invoices that are not beanpay's, cost one indexed read and no write; returns whether it was one
        of this node's not yet settled."""
        if invoice.amt_paid_msat <= 0:
            return False  # settled for nothing: nothing to credit (and not a state the table takes)
        async with self.db.acquire() as conn:
            if not await conn.fetchval(SQL.is_open_here, invoice.hash_hex, node.id, node.pubkey):
                return False
        started = time.perf_counter()
        settled_at = dt.datetime.fromtimestamp(invoice.settle_date, dt.UTC) if invoice.settle_date \
            else dt.datetime.now(dt.UTC)  # the node's time: a watcher catching up must not make it late
        stock: list[Any] = []
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(SQL.settle_invoice, invoice.hash_hex, node.id, invoice.amt_paid_msat,
                                      invoice.settle_index, settled_at, node.pubkey)
            if row is not None:
                if row["late"]:
                    log.warning("an invoice was paid after it was cancelled or expired: a late payment",
                                payment_hash=invoice.hash_hex, was=row["was"])
                done = await settle_many(conn, [(row["chain"], row["wallet_address"])], now=dt.datetime.now(dt.UTC),
                                         tolerance_bps=self.settings.underpay_tolerance_bps)
                stock = done.stock
            await conn.execute(SQL.advance_checkpoint, node.id, invoice.settle_index)
        if row is not None:
            SETTLED.inc()
            SETTLE_SECONDS.observe(time.perf_counter() - started)
            log.info("lightning payment settled", order_id=str(row["order_id"]), amount_msat=invoice.amt_paid_msat)
        await self.invalidator.stock_moved(stock)
        return row is not None

    async def _health(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for node in await self._watched():
                    await self._check(node)
            except RIDE_OUT as e:
                log.warning("lightning: database unavailable", error=repr(e))
            await sleep(stop, self.settings.lightning_health_seconds)

    async def _check(self, node: NodeRow) -> None:
        label, client = _label(node), self.client(node)
        inbound: int | None = None
        reason: str | None
        try:
            info = await client.info()
            if not info.synced_to_chain:
                health, reason = "not_synced", "the Lightning node is not synced to the chain"
            else:
                try:
                    inbound = (await client.channel_balance()).remote_balance.msat
                except LndError as e:
                    if not e.permission_denied:
                        raise
                    inbound = None  # its macaroon may not read balances: liquidity unknown, assumed
                health, reason = ("no_liquidity", "the Lightning node has no inbound liquidity") \
                    if inbound == 0 else ("ready", None)
        except (LndUnavailable, LndError) as e:
            health, reason = "down", "the Lightning node cannot be reached"
            log.warning("lightning node down", node=label, error=str(e))
        NODE_READY.labels(label).set(1 if health == "ready" else 0)
        if inbound is not None:
            NODE_INBOUND.labels(label).set(inbound)
        if reason is None:
            self.problems.pop(label, None)
        else:
            self.problems[label] = reason
        async with self.db.acquire() as conn:
            await conn.execute(SQL.set_health, node.id, health, reason, inbound)

    async def _cancel(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.cancel_stale()
            except RIDE_OUT as e:
                log.warning("lightning: database unavailable", error=repr(e))
            await sleep(stop, CANCEL_SECONDS)

    async def _refunds(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await refunds.pay_due(self.db, self.settings)
            except RIDE_OUT as e:
                log.warning("lightning: database unavailable", error=repr(e))
            await sleep(stop, REFUND_SECONDS)

    async def cancel_stale(self) -> int:
        """Cancel on their nodes the open invoices nobody should pay any more; returns how many."""
        async with self.db.acquire() as conn:
            stale = await conn.fetch(SQL.stale_invoices, 100)
        if not stale:
            return 0
        by_id = {n.id: n for n in await self._watched()}
        cancelled = 0
        for row in stale:
            node = by_id.get(row["node_id"])
            if node is None:
                continue
            try:
                await self.client(node).cancel_invoice(row["payment_hash"])
            except LndUnavailable:
                continue  # tried again next round; it also expires on the node by itself
            except LndError as e:
                if "already canceled" not in e.message:  # settled meanwhile: the stream credits it
                    log.warning("invoice not cancelled", payment_hash=row["payment_hash"], error=e.message)
                    continue
            async with self.db.acquire() as conn:
                await conn.execute(SQL.mark_cancelled, row["payment_hash"])
            CANCELLED.inc()
            cancelled += 1
        return cancelled

