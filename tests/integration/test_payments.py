"""Orders paid with real transactions on anvil and btcd, through the indexer and the engine: the
happy path per asset and each payment exception (underpaid, overpaid, late, multiple, reorged)."""

from __future__ import annotations

import uuid

from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, place

pytest_plugins = ["tests.integration.engine_support"]


async def _ledger(db, shop_id: str) -> dict[tuple[str, str], int]:  # type: ignore[no-untyped-def]
    rows = await db.fetch("SELECT chain, asset, -sum(amount) AS b FROM ledger_entries WHERE account = $1 "
                          "GROUP BY chain, asset", f"merchant:{shop_id}")
    return {(r["chain"], r["asset"]): int(r["b"]) for r in rows if r["b"] != 0}


async def _events(db, order_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    rows = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", order_id)
    return [r["event_type"] for r in rows]


async def test_eth_payment_confirms_the_order_commits_stock_and_credits_the_shop(
        api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens, stock=10)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH", quantity=2, size="large")
    pay = order["payment"]
    assert order["total_amount"] == "10.50" and pay["asset"] == "ETH" and pay["decimals"] == 18
    amount = int(pay["amount"])
    # 10.50 USD at the static 3200 USD/ETH, rounded up to the next wei
    assert amount == -(-10_50 * 10**18 // (3200 * 100))
    assert pay["payment_uri"] == f"ethereum:{pay['address']}@{pay['chain_id']}?value={amount}"
    supply = await (await api.get(f"/v1/supplies/{shop.supply_id}", headers=shop.staff)).json()
    assert (supply["quantity"], supply["reserved"]) == (10, 2)

    payer = anvil(0)
    await payer.pay_eth(pay["address"], amount)
    await eth_follower.sync()
    await engine()
    seen = await get_order(api, customer, order["id"])
    assert (seen["status"], seen["payment_status"]) == ("pending", "processing")
    assert seen["payment"]["amount_received"] == str(amount) and seen["payment"]["confirmations"] == 1
    # a block that changes no status wakes no engine, yet the API shows the live count
    await payer.mine(1)
    await eth_follower.sync()
    await engine()
    seen = await get_order(api, customer, order["id"])
    assert (seen["payment_status"], seen["payment"]["confirmations"]) == ("processing", 2)

    await payer.mine(2)
    await eth_follower.sync()
    await engine()
    paid = await get_order(api, customer, order["id"])
    assert (paid["status"], paid["payment_status"]) == ("confirmed", "confirmed")
    assert paid["payment"]["confirmed_at"] is not None
    supply = await (await api.get(f"/v1/supplies/{shop.supply_id}", headers=shop.staff)).json()
    assert (supply["quantity"], supply["reserved"]) == (8, 0)
    assert await _ledger(db, shop.id) == {("eth", "ETH"): amount}
    balances = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
    assert balances["balances"] == [{"chain": "eth", "asset": "ETH", "balance": str(amount), "decimals": 18,
                                    "custodial": True}]
    assert await _events(db, order["id"]) == ["order.created", "payment.initiated", "payment.processing",
                                              "payment.confirmed", "order.confirmed"]
    # nothing new: draining again changes nothing, credits nothing twice
    await eth_follower.sync()
    await engine()
    assert await _ledger(db, shop.id) == {("eth", "ETH"): amount}


async def test_btc_payment_in_two_parts_is_summed(api, tokens: Tokens, db, btc_wallet, btc_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "btc", "BTC")
    pay = order["payment"]
    amount = int(pay["amount"])
    assert pay["address"].startswith("bcrt1q")
    assert pay["payment_uri"].startswith(f"bitcoin:{pay['address']}?amount=0.0000")
    first = amount // 3
    await btc_wallet.pay(pay["address"], first)
    await btc_wallet.pay(pay["address"], amount - first)
    await btc_wallet.mine(1)
    await btc_follower.sync()
    await engine()
    assert (await get_order(api, customer, order["id"]))["payment_status"] == "processing"
    await btc_wallet.mine(2)
    await btc_follower.sync()
    await engine()
    paid = await get_order(api, customer, order["id"])
    assert (paid["status"], paid["payment_status"], paid["payment"]["amount_received"]) == (
        "confirmed", "confirmed", str(amount))
    assert await _ledger(db, shop.id) == {("btc", "BTC"): amount}


async def test_token_underpayment_is_an_exception_the_merchant_accepts(
        api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    pay = order["payment"]
    assert pay["amount"] == "4500000"  # 4.50 USD at 1 USD/tUSDC, 6 decimals
    assert pay["payment_uri"] == (f"ethereum:{pay['token_address']}@{pay['chain_id']}/transfer"
                                  f"?address={pay['address']}&uint256=4500000")
    payer = anvil(1)
    await payer.pay_usdc(pay["address"], 4_000_000)
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    short = await get_order(api, customer, order["id"])
    assert (short["status"], short["payment_status"]) == ("pending", "underpaid")
    assert await _ledger(db, shop.id) == {}
    # staff may not resolve; the merchant may, once
    resp = await api.post(f"/v1/orders/{order['id']}/payment/resolve", json={"action": "accept"}, headers=shop.staff)
    assert resp.status == 403
    resp = await api.post(f"/v1/orders/{order['id']}/payment/resolve", json={"action": "settle"},
                          headers=shop.merchant)
    assert resp.status == 409 and "underpaid" in (await resp.json())["error"]["message"]
    resp = await api.post(f"/v1/orders/{order['id']}/payment/resolve", json={"action": "accept"},
                          headers=shop.merchant)
    assert resp.status == 200, await resp.text()
    accepted = await resp.json()
    assert (accepted["status"], accepted["payment"]["resolution"]) == ("confirmed", "accepted")
    assert await _ledger(db, shop.id) == {("eth", "tUSDC"): 4_000_000}
    resp = await api.post(f"/v1/orders/{order['id']}/payment/resolve", json={"action": "accept"},
                          headers=shop.merchant)
    assert resp.status == 409
    assert "payment.underpaid" in await _events(db, order["id"])


async def test_overpayment_confirms_and_credits_everything_received(
        api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    payer = anvil(1)
    await payer.pay_usdc(order["payment"]["address"], 5_000_000)
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    over = await get_order(api, customer, order["id"])
    assert (over["status"], over["payment_status"]) == ("confirmed", "overpaid")
    assert await _ledger(db, shop.id) == {("eth", "tUSDC"): 5_000_000}
    resp = await api.post(f"/v1/orders/{order['id']}/payment/resolve", json={"action": "settle"},
                          headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["payment"]["resolution"] == "settled"


async def _expire_all(db) -> set[uuid.UUID]:
    """Expire every due order, batch after batch (earlier tests leave theirs due too); the shops given stock back."""
    from beanpay.engine.expiry import expire_orders

    shops: set[uuid.UUID] = set()
    for _ in range(1000):
        count, stock = await expire_orders(db, 100)
        shops |= {m.shop_id for m in stock}
        if count == 0:
            return shops
    raise AssertionError("orders kept falling due")


async def test_payment_after_expiry_is_late_and_can_be_refunded(
        make_api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    api = await make_api(payment_window_seconds=1)
    shop = await make_coffee_shop(api, tokens, stock=3)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await db.execute("UPDATE crypto_payments SET expires_at = now() - interval '1 minute' WHERE order_id = $1",
                     uuid.UUID(order["id"]))  # the window and the expiry grace are over
    assert uuid.UUID(shop.id) in await _expire_all(db)
    expired = await get_order(api, customer, order["id"])
    assert (expired["status"], expired["payment_status"]) == ("expired", "expired")
    supply = await (await api.get(f"/v1/supplies/{shop.supply_id}", headers=shop.staff)).json()
    assert supply["reserved"] == 0
    assert uuid.UUID(shop.id) not in await _expire_all(db)  # exactly once

    payer = anvil(2)
    await payer.pay_eth(order["payment"]["address"], int(order["payment"]["amount"]))
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    late = await get_order(api, customer, order["id"])
    assert (late["status"], late["payment_status"]) == ("expired", "late")
    assert await _ledger(db, shop.id) == {}
    resp = await api.post(f"/v1/orders/{order['id']}/payment/resolve", json={"action": "refund"},
                          headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["payment"]["resolution"] == "refunded"
    events = await _events(db, order["id"])
    assert events.count("order.expired") == 1 and events.count("payment.expired") == 1 and "payment.late" in events


async def test_reorged_payment_goes_back_and_counts_once_when_mined_again(
        api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens, stock=5)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    amount = int(order["payment"]["amount"])
    payer = anvil(2)
    txid = await payer.pay_eth(order["payment"]["address"], amount)
    await payer.mine(2)  # three confirmations: paid
    await eth_follower.sync()
    await engine()
    assert (await get_order(api, customer, order["id"]))["status"] == "confirmed"
    assert await _ledger(db, shop.id) == {("eth", "ETH"): amount}

    await payer.rpc("anvil_reorg", [3, []])  # the payment's block and the two above it are replaced
    await eth_follower.sync()
    await engine()
    back = await get_order(api, customer, order["id"])
    assert (back["status"], back["payment_status"]) == ("pending", "pending")
    assert await _ledger(db, shop.id) == {}
    supply = await (await api.get(f"/v1/supplies/{shop.supply_id}", headers=shop.staff)).json()
    assert (supply["quantity"], supply["reserved"]) == (5, 1)

    assert await payer.pay_eth(order["payment"]["address"], amount) == txid  # the same transaction, mined again
    await payer.mine(2)
    await eth_follower.sync()
    await engine()
    again = await get_order(api, customer, order["id"])
    assert (again["status"], again["payment_status"]) == ("confirmed", "confirmed")
    assert await _ledger(db, shop.id) == {("eth", "ETH"): amount}
    history = await (await api.get(f"/v1/shops/{shop.id}/ledger", headers=shop.merchant)).json()
    assert [(e["kind"], e["amount"]) for e in history["items"]] == [  # newest first
        ("payment", str(amount)), ("reversal", str(-amount)), ("payment", str(amount))]
    assert (await api.get(f"/v1/shops/{shop.id}/ledger", headers=shop.staff)).status == 403
    events = await _events(db, order["id"])
    assert events.count("payment.reverted") == 1 and events.count("order.confirmed") == 2
