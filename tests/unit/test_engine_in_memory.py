"""Settlement, expiry, claiming and inventory as transactions, on the in-memory database (tests/memory_db.py):
the same code the engine runs, without five services. tests/integration covers them on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from beanpay.audit import SYSTEM
from beanpay.engine import claiming, expiry, inventory
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.orders import cancel, lock_order
from beanpay.engine.settlement import resolve, settle_many
from beanpay.errors import Conflict
from tests.memory_db import MemoryDb, supply_status


async def settle(db: MemoryDb, *payments: dict) -> list[str | None]:  # type: ignore[type-arg]
    async with db.transaction() as conn:
        done = await settle_many(conn, [(p["chain"], p["wallet_address"]) for p in payments], now=db.now,
                                 tolerance_bps=50)
    return [c.status for c in done.changed]


async def test_a_confirmed_deposit_pays_the_order_takes_the_stock_and_credits_the_shop() -> None:
    db = MemoryDb()
    shop = uuid.uuid4()
    supply = db.add_supply(shop_id=shop, quantity=10)
    order, payment = db.add_order(amount=1000, shop_id=shop, stocked={supply["id"]: 2})
    db.deposit(payment, 1000)
    assert await settle(db, payment) == ["confirmed"]
    assert (db.orders[order["id"]]["order_status"], db.payments[payment["id"]]["status"]) == ("confirmed", "confirmed")
    assert (supply["quantity"], supply["reserved"]) == (8, 0)
    assert db.balance(shop) == 1000
    assert db.events() == ["payment.confirmed", "order.confirmed"]
    assert await settle(db, payment) == [], "settling again changes nothing"
    assert db.balance(shop) == 1000 and len(db.outbox) == 2


async def test_a_reorg_takes_the_payment_back_and_reverses_the_credit() -> None:
    db = MemoryDb()
    shop = uuid.uuid4()
    supply = db.add_supply(shop_id=shop, quantity=10)
    order, payment = db.add_order(amount=1000, shop_id=shop, stocked={supply["id"]: 1})
    dep = db.deposit(payment, 1000)
    await settle(db, payment)
    dep.update(status="orphaned", confirmations=0, block_height=None)
    assert await settle(db, payment) == ["pending"]
    assert db.orders[order["id"]]["order_status"] == "pending"
    assert (supply["quantity"], supply["reserved"]) == (10, 1), "the stock is held for the order again"
    assert db.balance(shop) == 0
    assert db.events()[-2:] == ["payment.reverted", "order.updated"]


async def test_a_fee_bump_counts_once_and_a_replaced_payment_never_pays() -> None:
    db = MemoryDb()
    order, payment = db.add_order(amount=1000)
    first = db.deposit(payment, 1000, status="seen")
    assert await settle(db, payment) == ["processing"]
    first.update(status="replaced")  # bumped: the same output paid by a new transaction, seen, then mined
    db.deposit(payment, 1000, status="confirmed")
    assert await settle(db, payment) == ["confirmed"]
    assert db.balance(order["shop_id"]) == 1000  # once, not twice

    other, redirected = db.add_order(amount=1000)
    gone = db.deposit(redirected, 1000, status="seen")
    assert await settle(db, redirected) == ["processing"]
    gone.update(status="replaced")  # the replacement paid someone else: the order waits again
    assert await settle(db, redirected) == ["pending"]
    assert db.orders[other["id"]]["order_status"] == "pending" and db.balance(other["shop_id"]) == 0


async def test_short_payments_wait_for_the_merchant_who_may_accept_them() -> None:
    db = MemoryDb()
    order, payment = db.add_order(amount=1000)
    db.deposit(payment, 900)
    assert await settle(db, payment) == ["underpaid"]
    assert db.balance(order["shop_id"]) == 0
    async with db.transaction() as conn:
        locked = await lock_order(conn, order["id"])
        await resolve(conn, locked, "accept", SYSTEM)
    assert db.orders[order["id"]]["order_status"] == "confirmed"
    assert db.balance(order["shop_id"]) == 900
    async with db.transaction() as conn:
        with pytest.raises(Conflict, match="already resolved"):
            await resolve(conn, await lock_order(conn, order["id"]), "accept", SYSTEM)


async def test_money_for_a_closed_order_is_late_never_confirmed() -> None:
    db = MemoryDb()
    order, payment = db.add_order(amount=1000)
    async with db.transaction() as conn:
        await cancel(conn, await lock_order(conn, order["id"]), SYSTEM)
    db.deposit(payment, 1000)
    assert await settle(db, payment) == ["late"]
    assert db.orders[order["id"]]["order_status"] == "cancelled"
    assert db.balance(order["shop_id"]) == 0


async def test_a_move_the_payment_state_machine_lacks_is_refused_and_nothing_is_written() -> None:
    db = MemoryDb()
    _, payment = db.add_order(amount=1000)
    db.payments[payment["id"]]["status"] = "late"  # the window is over: late never goes back to pending
    dep = db.deposit(payment, 1000, status="orphaned")  # nothing live, and the clock says within the window
    assert dep["status"] == "orphaned"
    with pytest.raises(IllegalTransition, match="payment is late; it cannot become pending"):
        await settle(db, payment)
    assert db.payments[payment["id"]]["status"] == "late" and not db.outbox and not db.ledger


async def test_expiry_closes_unpaid_orders_once_and_gives_their_stock_back() -> None:
    db = MemoryDb()
    shop = uuid.uuid4()
    supply = db.add_supply(shop_id=shop, quantity=5)
    order, _ = db.add_order(shop_id=shop, stocked={supply["id"]: 3})
    paid_order, paid = db.add_order(shop_id=shop)
    db.deposit(paid, 10, status="confirming")  # money seen: settlement decides, not expiry
    db.now += dt.timedelta(minutes=16)
    count, stock = await expiry.expire_orders(db, 100)
    assert count == 1 and [m.supply_id for m in stock] == [supply["id"]]
    assert (db.orders[order["id"]]["order_status"], supply["reserved"]) == ("expired", 0)
    assert db.orders[paid_order["id"]]["order_status"] == "pending"
    assert db.events() == ["payment.expired", "order.expired"]
    assert (await expiry.expire_orders(db, 100))[0] == 0


async def test_one_live_claim_per_order_and_processing_completes_it() -> None:
    db = MemoryDb()
    order, payment = db.add_order(amount=1000)
    db.deposit(payment, 1000)
    await settle(db, payment)
    async with db.transaction() as conn:
        claim = await claiming.claim(conn, await lock_order(conn, order["id"]), ttl=dt.timedelta(minutes=30),
                                     actor=SYSTEM)
    async with db.transaction() as conn:
        with pytest.raises(Conflict, match="already claimed"):
            await claiming.claim(conn, await lock_order(conn, order["id"]), ttl=dt.timedelta(minutes=30),
                                 actor=SYSTEM)
    async with db.transaction() as conn:
        done, completed = await claiming.process(conn, claim.claim_code, may_manage=lambda _: True, actor=SYSTEM)
    assert (done.status, completed.order_status) == ("processed", "completed")
    assert db.events()[-3:] == ["claim.processed", "order.completed", "order.picked_up"]


async def test_an_expired_claim_cannot_be_processed_and_frees_the_order() -> None:
    db = MemoryDb()
    order, payment = db.add_order(amount=1000)
    db.deposit(payment, 1000)
    await settle(db, payment)
    async with db.transaction() as conn:
        claim = await claiming.claim(conn, await lock_order(conn, order["id"]), ttl=dt.timedelta(minutes=1),
                                     actor=SYSTEM)
    db.now += dt.timedelta(minutes=2)
    async with db.transaction() as conn:
        with pytest.raises(Conflict, match="expired"):
            await claiming.process(conn, claim.claim_code, may_manage=lambda _: True, actor=SYSTEM)
    assert await expiry.expire_claims(db, 10) == 1
    async with db.transaction() as conn:  # claimable again
        await claiming.claim(conn, await lock_order(conn, order["id"]), ttl=dt.timedelta(minutes=1), actor=SYSTEM)


async def test_a_reservation_short_of_stock_names_the_line_and_holds_nothing() -> None:
    db = MemoryDb()
    shop = uuid.uuid4()
    plenty = db.add_supply(shop_id=shop, quantity=50)
    scarce = db.add_supply(shop_id=shop, quantity=2)
    wanted = {plenty["product_id"]: 1, scarce["product_id"]: 3}
    fields = {plenty["product_id"]: "items[0].quantity", scarce["product_id"]: "items[1].quantity"}
    with pytest.raises(Conflict) as refused:
        async with db.transaction() as conn:
            await inventory.reserve(conn, uuid.uuid4(), shop, wanted, fields)
    assert refused.value.detail == {"field": "items[1].quantity", "available": 2}
    assert db.supplies[plenty["id"]]["reserved"] == db.supplies[scarce["id"]]["reserved"] == 0, "rolled back"


async def test_the_low_stock_alert_fires_when_a_reservation_takes_stock_below_the_reorder_level() -> None:
    db = MemoryDb()
    shop = uuid.uuid4()
    supply = db.add_supply(shop_id=shop, quantity=8, reorder_level=5)
    async with db.transaction() as conn:
        await inventory.reserve(conn, uuid.uuid4(), shop, {supply["product_id"]: 2}, {})
    assert db.events() == [] and supply_status(supply) == "in_stock"
    async with db.transaction() as conn:
        await inventory.reserve(conn, uuid.uuid4(), shop, {supply["product_id"]: 1}, {})
    assert db.events() == ["supply.low_stock_alert"] and supply_status(supply) == "low_stock"
    async with db.transaction() as conn:
        await inventory.reserve(conn, uuid.uuid4(), shop, {supply["product_id"]: 1}, {})
    assert db.events() == ["supply.low_stock_alert"], "once, not on every reservation below the level"
