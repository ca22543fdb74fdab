"""Two engine processes side by side settle the same deposits: each payment credited exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import Tokens, open_test_db, wait_for
from tests.integration.engine_support import make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support"]

BIN = Path(sys.executable).parent


async def test_two_engines_credit_each_payment_once(api, tokens: Tokens, db, chain_settings) -> None:
    shop = await make_coffee_shop(api, tokens, stock=1000)
    orders = [await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC")
              for _ in range(60)]
    env = {**os.environ, "BEANPAY_DATABASE_URL": chain_settings.dsn, "BEANPAY_PRICE_REFRESH_SECONDS": "3600",
           "BEANPAY_ENGINE_BATCH_SIZE": "7"}
    engines = [subprocess.Popen([str(BIN / "beanpay"), "engine"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        for i, order in enumerate(orders):  # in two parts for a third of them: summed, credited once
            if i % 3 == 0:
                half = int(order["payment"]["amount"]) // 2
                await pay_directly(db, order, half)
                await pay_directly(db, order, int(order["payment"]["amount"]) - half)
            else:
                await pay_directly(db, order)
        ids = [uuid.UUID(o["id"]) for o in orders]

        async def all_paid() -> bool:
            n = await db.fetchval(
                "SELECT count(*) FROM coffee_orders WHERE id = ANY($1) AND order_status = 'confirmed'", ids)
            return bool(n == len(ids))

        await wait_for(all_paid, timeout=60)
        assert all(e.poll() is None for e in engines), "an engine died"
    finally:
        for e in engines:
            e.send_signal(signal.SIGTERM)
        for e in engines:
            e.wait(timeout=20)
    credits = await db.fetch(
        """SELECT p.order_id, -sum(l.amount) AS credited, count(*) AS entries, p.crypto_amount
           FROM crypto_payments p JOIN ledger_entries l ON l.payment_id = p.id AND l.account = $2
           WHERE p.order_id = ANY($1) GROUP BY p.order_id, p.crypto_amount""", ids, f"merchant:{shop.id}")
    assert len(credits) == 60
    assert all(c["entries"] == 1 and c["credited"] == c["crypto_amount"] for c in credits)
    confirmed_events = await db.fetchval(
        "SELECT count(*) FROM event_outbox WHERE event_type = 'order.confirmed' AND aggregate_id = ANY($1)",
        [o["id"] for o in orders])
    assert confirmed_events == 60
    supply = await db.fetchrow("SELECT quantity, reserved FROM coffee_supplies WHERE id = $1",
                               uuid.UUID(shop.supply_id))
    assert (supply["quantity"], supply["reserved"]) == (940, 0)


async def test_a_change_committed_while_the_engine_settles_is_not_lost(api, tokens: Tokens, db, engine) -> None:
    """The interleaving the benchmark found: the indexer confirms a deposit in a transaction that is still
    open while an engine claims the address's earlier queue row and settles from what it can see. The
    confirmation must still be settled once it commits."""
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC")
    address = order["payment"]["address"]
    await db.execute(
        """INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height, status)
           VALUES ('eth', 'tUSDC', $1, 0, $2, $3, '0xblock', 1, 'confirming')""",
        "0x" + uuid.uuid4().hex * 2, address, int(order["payment"]["amount"]))
    indexer = await db.raw.acquire()
    try:
        tx = indexer.transaction()
        await tx.start()
        await indexer.execute("UPDATE deposits SET status = 'confirmed' WHERE address = $1",
                              address)
        await engine()  # settles from the committed state: processing
        status = await db.fetchval("SELECT payment_status FROM coffee_orders WHERE id = $1", uuid.UUID(order["id"]))
        assert status == "processing"
        await tx.commit()
    finally:
        await db.raw.release(indexer)
    await engine()
    row = await db.fetchrow("SELECT order_status, payment_status FROM coffee_orders WHERE id = $1",
                            uuid.UUID(order["id"]))
    assert (row["order_status"], row["payment_status"]) == ("confirmed", "confirmed")


async def test_two_expiry_runs_at_once_expire_each_order_once(api, tokens: Tokens, db, chain_settings) -> None:
    import asyncio

    from beanpay.engine.expiry import expire_orders

    shop = await make_coffee_shop(api, tokens, stock=100)
    orders = [await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC")
              for _ in range(40)]
    ids = [uuid.UUID(o["id"]) for o in orders]
    await db.execute("UPDATE crypto_payments SET expires_at = now() - interval '1 minute' WHERE order_id = ANY($1)",
                     ids)
    pools = [await open_test_db(chain_settings.dsn, min_size=1, max_size=2) for _ in range(2)]
    try:
        async def drain(pool) -> int:  # type: ignore[no-untyped-def]
            expired = 0
            while (n := (await expire_orders(pool, 7))[0]) > 0:
                expired += n
            return expired

        counts = await asyncio.gather(*(drain(p) for p in pools))
    finally:
        for p in pools:
            await p.close()
    assert sum(counts) >= 40
    events = await db.fetchval("SELECT count(*) FROM event_outbox WHERE event_type = 'order.expired' "
                               "AND aggregate_id = ANY($1)", [o["id"] for o in orders])
    assert events == 40
    supply = await db.fetchrow("SELECT quantity, reserved FROM coffee_supplies WHERE id = $1",
                               uuid.UUID(shop.supply_id))
    assert (supply["quantity"], supply["reserved"]) == (100, 0)
