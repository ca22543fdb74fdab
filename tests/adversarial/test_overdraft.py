"""A shop tries to take out more than the platform holds for it: a refund after its balance was paid out,
two approvals at once against one balance, and a ledger entry written straight into the database. The
shop's custodial balance never goes below zero except by a chain reorg's reversal, which is a debt."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import asyncpg
import pytest

from beanpay.engine import ledger
from beanpay.engine.settlement import settle_many
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, get_order, make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support"]
CUSTOMER_ADDRESS = "0x000000000000000000000000000000000000dEaD"
FEE_ROOM = 10**13  # what a payout of ETH leaves for its network fee (the asset's minimum transfer)


async def custodial(api: Any, shop: Shop, asset: str = "ETH") -> int:
    body = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
    return sum(int(b["balance"]) for b in body["balances"] if b["asset"] == asset and b["custodial"])


async def paid_eth_order(api: Any, tokens: Tokens, db: Any, engine: Any, shop: Shop) -> dict[str, Any]:
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    assert (await get_order(api, customer, order["id"]))["payment_status"] == "confirmed"
    return order


async def pay_out(api: Any, tokens: Tokens, shop: Shop, amount: int) -> dict[str, Any]:
    resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                          json={"chain": "eth", "asset": "ETH", "amount": str(amount), "address": CUSTOMER_ADDRESS})
    assert resp.status == 201, await resp.text()
    resp = await api.post(f"/v1/payouts/{(await resp.json())['id']}/approve", headers=tokens.operator)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def refund(api: Any, shop: Shop, order: dict[str, Any], **body: Any) -> dict[str, Any]:
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", json=body or {"variant": "crypto_paid"},
                          headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def claim(api: Any, refund: dict[str, Any]) -> dict[str, Any]:
    resp = await api.post(f"/v1/refund-claims/{refund['claim_token']}", json={"address": CUSTOMER_ADDRESS})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def test_a_refund_after_the_balance_was_paid_out_waits_and_cannot_be_approved(
        api, tokens: Tokens, db, engine) -> None:
    """The whole custodial balance is paid out, then the order is refunded in full (crypto_paid, which is
    approved the moment the customer claims it). The claim is taken, but nothing is approved or sent:
    the platform would be paying the shop's refund with other shops' money."""
    shop = await make_coffee_shop(api, tokens)
    order = await paid_eth_order(api, tokens, db, engine, shop)
    await pay_out(api, tokens, shop, await custodial(api, shop) - FEE_ROOM)  # all it may: its fee stays
    assert await custodial(api, shop) == FEE_ROOM
    issued = await refund(api, shop, order)
    claimed = await claim(api, issued)
    assert claimed["status"] == "awaiting_approval", claimed
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 409, await resp.text()
    assert "balance" in (await resp.json())["error"]["message"]
    assert await custodial(api, shop) == FEE_ROOM


async def test_two_approvals_at_once_cannot_both_take_the_last_of_a_balance(api, tokens: Tokens, db, engine) -> None:
    """Two refunds, each worth more than half of what is left, approved at the same moment: one wins."""
    shop = await make_coffee_shop(api, tokens)
    orders = [await paid_eth_order(api, tokens, db, engine, shop) for _ in range(2)]
    each = int(orders[0]["payment"]["amount"])
    await pay_out(api, tokens, shop, await custodial(api, shop) - each)  # one order's worth is left
    refunds = [await refund(api, shop, o, variant="custom", amount=str(each * 6 // 10)) for o in orders]
    for r in refunds:
        assert (await claim(api, r))["status"] == "awaiting_approval"
    answers = await asyncio.gather(*(api.post(f"/v1/refunds/{r['id']}/approve", headers=shop.merchant)
                                     for r in refunds))
    assert sorted(a.status for a in answers) == [200, 409], [await a.text() for a in answers]
    assert await custodial(api, shop) == each - each * 6 // 10


async def test_the_database_refuses_an_entry_that_overdraws_a_custodial_balance(
        api, tokens: Tokens, db, engine) -> None:
    """Past every check in the code: a refund's debit inserted directly is refused by the database; a chain
    reorg's reversal is not refused (the money did go), it leaves a debt, and while the shop is in debt
    no refund or payout debit passes, though new payments are still credited."""
    shop = await make_coffee_shop(api, tokens)
    order = await paid_eth_order(api, tokens, db, engine, shop)
    held = await custodial(api, shop)
    payment_id = await db.fetchval("SELECT id FROM crypto_payments WHERE order_id = $1", uuid.UUID(order["id"]))
    merchant, owed, funds = f"merchant:{shop.id}", "refunds:eth:ETH", "deposits:eth:ETH"
    transfers = [uuid.UUID((await refund(api, shop, order, variant="custom", amount=str(10**13)))["id"])
                 for _ in range(2)]

    async def entry(kind: str, debit: str, credit: str, amount: int, *, transfer: int | None = 0) -> None:
        await db.execute(
            """INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id,
                                           transfer_id)
               SELECT g, a.account, $3, 'eth', 'ETH', a.amount, $4, $5, $6
               FROM (SELECT gen_random_uuid() AS g) x, unnest($1::text[], $2::numeric[]) AS a(account, amount)""",
            [debit, credit], [amount, -amount], uuid.UUID(shop.id), kind, payment_id,
            None if transfer is None else transfers[transfer])

    with pytest.raises(asyncpg.CheckViolationError, match="custodial balance"):
        await entry("refund", merchant, owed, held + 1)
    await entry("refund", merchant, owed, held)  # exactly the balance: allowed
    await entry("reversal", merchant, funds, 5, transfer=None)  # a reorg took a payment back: a debt of 5
    assert await custodial(api, shop) == -5
    async with db.acquire() as conn:  # what the engine counts for the alert
        owing = {(d.chain, d.asset): d for d in await ledger.debts(conn)}
    assert owing[("eth", "ETH")].shops >= 1 and owing[("eth", "ETH")].owed >= 5
    with pytest.raises(asyncpg.CheckViolationError, match="custodial balance"):
        await entry("payout", merchant, "payouts:eth:ETH", 1, transfer=1)
    await entry("payment", funds, merchant, 7, transfer=None)  # money still comes in while in debt
    assert await custodial(api, shop) == 2


async def test_two_settlements_of_one_payment_at_once_credit_the_platform_once(
        api, tokens: Tokens, db, chain_settings) -> None:
    """Two engines settle one address, the second seeing one more deposit (or a shop's node races an on-chain
    deposit): the second waits for the first's lock. What it decides must rest on what the first committed, or the
    platform's share is credited twice (and the shop can ask for it to be paid out)."""
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    key = (order["payment"]["chain"], order["payment"]["address"])
    first_done, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction() as conn:
            await settle_many(conn, [key], now=dt.datetime.now(dt.UTC), tolerance_bps=0)
            first_done.set()
            await release.wait()

    async def second() -> None:
        async with db.transaction() as conn:
            await settle_many(conn, [key], now=dt.datetime.now(dt.UTC), tolerance_bps=0)

    one = asyncio.create_task(first())
    await first_done.wait()
    two = asyncio.create_task(second())  # blocks on the payment's lock
    await asyncio.sleep(0.5)
    await pay_directly(db, order, 1)  # and one more deposit seen meanwhile
    release.set()
    await asyncio.gather(one, two)
    assert await custodial(api, shop) == int(order["payment"]["amount"]) + 1
    own = await db.fetchval("SELECT coalesce(-sum(amount), 0) FROM ledger_custody WHERE account = $1 AND NOT custodial",
                            f"merchant:{shop.id}")
    assert own == 0


async def test_money_a_reorg_could_still_take_back_is_not_paid_out_again(api, tokens: Tokens, db, engine) -> None:
    """The shop makes an invoice that counts one confirmation (speed medium), its accomplice pays, and a
    refund of everything is claimed at once (approved the moment it is claimed). Were it sent, a one-block
    reorg of the payment would leave the platform paying. It waits until the payment is final."""
    shop = await make_coffee_shop(api, tokens)
    resp = await api.post("/v1/invoices", headers=shop.merchant, json={
        "shop_id": shop.id, "amount": "12.40", "assets": [{"chain": "eth", "asset": "ETH"}], "speed": "medium"})
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    token = {"X-Checkout-Token": made["checkout_token"]}
    pay = (await (await api.post(f"/v1/invoices/{made['id']}/payment", json={"chain": "eth", "asset": "ETH"},
                                 headers=token)).json())["payment"]
    txid = "0x" + uuid.uuid4().hex * 2
    await db.execute(
        """INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height, status)
           VALUES ('eth', 'ETH', $1, 0, $2, $3, $4, 1, 'confirming')""",
        txid, pay["address"], int(pay["amount"]), "0x" + uuid.uuid4().hex * 2)
    await engine()
    order = {"id": made["order_id"] or (await (await api.get(f"/v1/invoices/{made['id']}", headers=token)).json())[
        "order_id"]}
    issued = await refund(api, shop, order)
    claimed = await claim(api, issued)
    assert claimed["status"] == "awaiting_approval", claimed  # not approved: not final yet
    assert (await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)).status == 409
    await db.execute("UPDATE deposits SET status = 'confirmed', confirmed_at = now() WHERE txid = $1", txid)
    await engine()
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 200, await resp.text()
