"""`just restore-drill`: back up, lose the database, restore it to a point in time, and find every payment.

1. A PostgreSQL cluster of the drill's own archives every WAL segment to pgBackRest; a full base backup
   is taken right after the migrations (so the restore replays every order from WAL).
2. beanpay (API, engine, EVM indexer) runs on it. Customers place orders over HTTP; half are paid with
   real tUSDC transfers on anvil and confirmed. That moment is the recovery target T.
3. The other half are paid after T (and one more order is placed after T). Then the cluster is lost.
4. pgBackRest restores the base backup into a new cluster and replays WAL up to T; it is promoted.
   Orders placed before T are there, the late one is not, and the indexer's checkpoint is where it was at T.
5. beanpay starts on the restored cluster: the indexer re-scans from its restored checkpoint, finds the
   payments made after T on chain, and the engine confirms their orders.
6. The invariants: every payment confirmed its order and was credited once for what was paid, the ledger
   balances. Prints what was measured (`--json` for scripts); exits non-zero if anything does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from beanpay import db
from beanpay.config import Settings, load_settings
from beanpay.deploy.devstack import stack
from beanpay.deploy.devstack.pgbackrest import PgBackRest
from beanpay.deploy.devstack.postgres import Postgres
from beanpay.deploy.drills import invariants
from beanpay.deploy.drills.invariants import SQL, Invariants
from beanpay.deploy.drills.services import Services
from beanpay.deploy.drills.shop import DrillError, Merchant, Payer, Placed, Shop
from beanpay.deploy.endpoint import free_port
from beanpay.migrate import migrate

SERVICES = ["api", "engine", "index-eth"]


class Report(msgspec.Struct):
    orders: int
    paid_before_target: int
    paid_after_target: int
    target: dt.datetime
    backup_seconds: float
    restore_seconds: float  # pgBackRest restore and WAL replay until the copy was promoted
    refound_seconds: float  # beanpay started on the copy until every order paid after T was confirmed
    checkpoint_at_target: int | None  # the indexer's, read at T in the original
    checkpoint_restored: int | None  # the indexer's in the restored copy (must equal the one at T)
    checkpoint_before_loss: int | None
    late_order_absent: bool
    after_target_pending_on_restore: int  # paid after T: not yet confirmed in the restored copy, as at T
    invariants: Invariants


def _drill_settings(settings: Settings, root: Path, name: str) -> Settings:
    return msgspec.structs.replace(settings, state_dir=str(root / name), pg_port=free_port(), database_url=None,
                                   pg_database="beanpay")


def _env(settings: Settings) -> dict[str, str]:
    return {"BEANPAY_DATABASE_URL": settings.dsn, "BEANPAY_LOG_LEVEL": "warning",
            "BEANPAY_ENGINE_POLL_SECONDS": "0.5", "BEANPAY_RATE_LIMITS": "false",
            "BEANPAY_WEBHOOK_ALLOW_PRIVATE": "true"}


async def _until(what: str, check: Any, within: float, payer: Payer | None = None) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise DrillError(f"timed out after {within:.0f}s waiting for {what}")
        if payer is not None:
            await payer.mine(1)  # confirmations come with blocks
        await asyncio.sleep(0.5)


async def _confirmed(pool: db.Pool, orders: list[Placed]) -> int:
    async with pool.acquire() as conn:
        rows = await conn.fetch(SQL.order_states, [uuid.UUID(o.id) for o in orders])
    return sum(1 for r in rows if r["order_status"] == "confirmed")


async def _scalar(pool: db.Pool, query: Any, *args: Any) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(query, *args)


async def run(settings: Settings, orders: int, keep: bool) -> Report:
    root = settings.state_path / "restore-drill"
    shutil.rmtree(root, ignore_errors=True)
    PgBackRest.install()
    chain = (settings.evm_chains or [])[0]
    origin_settings = _drill_settings(settings, root, "origin")
    origin = Postgres(origin_settings)
    backrest = PgBackRest(origin, root / "pgbackrest")
    origin.extra_settings = backrest.archive_settings
    origin.paths.make()
    origin.start()  # initdb, archiving on, the role and database
    restored: Postgres | None = None
    services: Services | None = None
    payer = Payer(chain)
    merchant = Merchant(free_port())
    await merchant.start()
    try:
        backrest.write_config()
        await asyncio.to_thread(backrest.create_stanza)
        await migrate(origin_settings.dsn)
        started = time.monotonic()
        await asyncio.to_thread(backrest.backup, "full")
        backup_seconds = time.monotonic() - started

        services = Services(_env(origin_settings), root / "logs" / "origin", SERVICES)
        services.start()
        await services.wait_ready()
        (api,) = services.of("api")
        shop = Shop(f"http://127.0.0.1:{api.api_port}", settings.jwt_secret or "")
        pool = await db.create_pool(origin_settings)
        async with aiohttp.ClientSession() as http:
            await shop.seed(http, merchant)
            placed = [await shop.order(http) for _ in range(orders)]
            before, after = placed[: orders // 2], placed[orders // 2:]
            for o in before:
                await payer.pay(o)
            await _until("the orders paid before T to confirm", lambda: _is(pool, before), 120, payer)
            await asyncio.sleep(1.0)
            target: dt.datetime = await _scalar(pool, SQL.now)
            checkpoint_at_target = await _scalar(pool, SQL.indexed_tip, chain.name)
            await asyncio.sleep(1.0)  # everything from here on is after T
            for o in after:
                await payer.pay(o)
            late = await shop.order(http)
            await _until("the orders paid after T to confirm (before the loss)", lambda: _is(pool, after), 120,
                         payer)
            checkpoint_before_loss = await _scalar(pool, SQL.indexed_tip, chain.name)
        await pool.close()
        await asyncio.to_thread(backrest.create_stanza)  # `check`: the last segment reached the repository
        # the loss: every process and the cluster are gone
        services.stop()
        await asyncio.to_thread(origin.stop)

        started = time.monotonic()
        restored = Postgres(_drill_settings(settings, root, "restored"))
        await asyncio.to_thread(backrest.restore_to, restored, target)
        await asyncio.to_thread(restored.start_server)
        pool = await db.create_pool(restored.settings)
        await _until("the restored cluster to reach T and be promoted",
                     lambda: _not(_scalar(pool, SQL.in_recovery)), 120)
        restore_seconds = time.monotonic() - started
        async with pool.acquire() as conn:
            late_absent = not await conn.fetch(SQL.order_states, [uuid.UUID(late.id)])
        pending = len(after) - await _confirmed(pool, after)
        restored_checkpoint = await _scalar(pool, SQL.indexed_tip, chain.name)

        started = time.monotonic()
        services = Services(_env(restored.settings), root / "logs" / "restored", SERVICES)
        services.start()
        await services.wait_ready()
        await _until("the payments made after T to be found again", lambda: _is(pool, placed), 180, payer)
        refound_seconds = time.monotonic() - started
        async with pool.acquire() as conn:
            held = await invariants.check(conn, placed)
        await pool.close()
        return Report(orders, len(before), len(after), target, round(backup_seconds, 2), round(restore_seconds, 2),
                      round(refound_seconds, 2), checkpoint_at_target, restored_checkpoint, checkpoint_before_loss,
                      late_absent,
                      pending, held)
    finally:
        if services is not None:
            services.stop()
        await merchant.stop()
        await payer.close()
        for cluster in (origin, restored):
            if cluster is not None:
                await asyncio.to_thread(cluster.stop)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


async def _is(pool: db.Pool, orders: list[Placed]) -> bool:
    return await _confirmed(pool, orders) == len(orders)


async def _not(value: Any) -> bool:
    return not await value


def report_lines(r: Report) -> list[str]:
    i = r.invariants
    return [
        f"orders: {r.orders} ({r.paid_before_target} paid before T, {r.paid_after_target} after)",
        f"recovery target T: {r.target.isoformat()}",
        f"base backup: {r.backup_seconds} s; restore and WAL replay to T: {r.restore_seconds} s",
        f"restored copy at T: late order absent {r.late_order_absent}, {r.after_target_pending_on_restore} of "
        f"{r.paid_after_target} after-T payments not yet confirmed, indexer checkpoint {r.checkpoint_restored} "
        f"(at T {r.checkpoint_at_target}, {r.checkpoint_before_loss} at the loss)",
        f"beanpay on the copy found every after-T payment again in {r.refound_seconds} s",
        f"invariants: {i.confirmed}/{i.paid} confirmed, lost {len(i.lost)}, credited twice {len(i.credited_twice)}, "
        f"credited wrong {len(i.credited_wrong)}, unbalanced ledger groups {i.unbalanced_groups}",
    ]


def passed(r: Report) -> bool:
    """The copy is the database as it was at T, and beanpay on it ends with every payment counted once."""
    return (r.invariants.hold and r.late_order_absent and r.after_target_pending_on_restore == r.paid_after_target
            and r.checkpoint_restored == r.checkpoint_at_target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="just restore-drill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20, help="orders placed, half paid after the target")
    parser.add_argument("--keep", action="store_true", help="leave the drill's clusters and logs in place")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.orders < 2:
        parser.error("--orders must be at least 2")
    settings = load_settings()
    stack.up(settings, ["postgres", "redis", "kafka", "anvil"])  # anvil is the chain; Redis and Kafka are shared
    settings = load_settings()
    report = asyncio.run(run(settings, args.orders, args.keep))
    ok = passed(report)
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        print("\n".join(report_lines(report)))
        print("restore drill " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
