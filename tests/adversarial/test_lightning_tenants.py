"""A shop owner with a Lightning node of their own plays against the platform: their node (a fake lnd REST
server with its own certificate, tests.adversarial.fake_lnd) reports whatever it likes. Settlement must
believe a node only about the invoices it issued, never credit a cancelled or expired invoice as a
payment, and count money in a shop's own node as the shop's, never as money the platform holds. A
refund goes back only from the custody that received the money."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from beanpay.chains.lightning.lnd import LndClient
from beanpay.engine.lightning import refunds as lightning_refunds
from tests.adversarial.fake_lnd import FakeLnd
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, get_order, make_coffee_shop, place
from tests.integration.lightning_support import Running, until
from tests.integration.merchant_wallet import MerchantWallet

pytest_plugins = ["tests.integration.lightning_support"]
TEN_BTC_MSAT = 10 * 100_000_000 * 1000


@pytest.fixture
async def fake_node() -> AsyncIterator[FakeLnd]:
    node = await FakeLnd().start()
    yield node
    await node.stop()


async def connect(api: Any, shop: Shop, node: FakeLnd, **extra: Any) -> None:
    resp = await api.put(f"/v1/shops/{shop.id}/lightning-node", json=node.connect_body(**extra), headers=shop.merchant)
    assert resp.status == 200, await resp.text()


async def streaming(db: Any, node: FakeLnd) -> None:
    """The lightning service follows the node (it looks for new nodes every few seconds)."""
    async def opened() -> bool:
        return node.streams > 0
    await until(opened, "the lightning service to open the node's invoice stream", within=30)


async def read_through(db: Any, shop: Shop, node: FakeLnd) -> None:
    """Wait until the service has read everything the node reported (its checkpoint moved past it): an
    open invoice after the reports makes the service write the checkpoint whatever it made of them."""
    index = node._settle_index
    node._queue.put_nowait({"r_hash": "AA==", "state": "OPEN", "add_index": "1"})

    async def caught_up() -> bool:
        return bool(await db.fetchval("SELECT settle_index >= $2 FROM lightning_nodes WHERE shop_id = $1",
                                      uuid.UUID(shop.id), index))
    await until(caught_up, "the service to read the node's reports", within=30)


async def merchant_credit(db: Any, shop_id: str) -> int:
    return int(await db.fetchval("SELECT coalesce(-sum(amount), 0) FROM ledger_entries WHERE account = $1",
                                 f"merchant:{shop_id}"))


async def test_a_shops_node_cannot_settle_another_shops_invoice(
        ln_api, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """The attacker's node reports the victim's invoice (its payment hash is on the victim's order, which
    the attacker can see as a customer) settled for 10 BTC. Nothing moved: the victim's order must stay
    unpaid and nobody may be credited."""
    victim, attacker = await make_coffee_shop(ln_api, tokens), await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(ln_api, customer, victim, "lightning", "BTC")
    payment_hash = order["payment"]["lightning"]["payment_hash"]
    await connect(ln_api, attacker, fake_node)
    await streaming(db, fake_node)
    fake_node.report_settled(payment_hash, TEN_BTC_MSAT)
    await read_through(db, attacker, fake_node)
    after = await get_order(ln_api, customer, order["id"])
    assert after["payment_status"] == "pending", after["payment"]
    assert after["payment"]["amount_received"] == "0"
    assert await db.fetchval("SELECT state FROM lightning_invoices WHERE payment_hash = $1", payment_hash) == "open"
    assert await merchant_credit(db, victim.id) == 0 and await merchant_credit(db, attacker.id) == 0


async def test_an_invoice_cancelled_before_it_was_paid_is_a_late_payment_not_a_paid_order(
        ln_api, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """beanpay cancelled the invoice (its time was up); the node reports it settled afterwards. It is never
    the order's payment: the merchant decides on it as on any late payment."""
    shop = await make_coffee_shop(ln_api, tokens)
    await connect(ln_api, shop, fake_node)
    await streaming(db, fake_node)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(ln_api, customer, shop, "lightning", "BTC")
    payment_hash = order["payment"]["lightning"]["payment_hash"]
    assert payment_hash in fake_node.invoices  # issued on the shop's own node
    await db.execute("UPDATE lightning_invoices SET expires_at = now() - interval '1 second' "
                     "WHERE payment_hash = $1", payment_hash)

    async def cancelled() -> bool:
        return bool(await db.fetchval("SELECT state = 'cancelled' FROM lightning_invoices WHERE payment_hash = $1",
                                      payment_hash))
    await until(cancelled, "the stale invoice to be cancelled on its node")
    fake_node.report_settled(payment_hash, int(order["payment"]["amount"]) * 1000)
    await read_through(db, shop, fake_node)
    after = await get_order(ln_api, customer, order["id"])
    assert after["payment_status"] == "late", after["payment"]
    assert after["status"] == "pending"  # not confirmed: nobody starts making it
    assert await merchant_credit(db, shop.id) == 0  # late money is credited only once the merchant accepts it


async def test_money_paid_into_a_shops_own_node_is_the_shops_and_cannot_be_paid_out_by_the_platform(
        ln_api, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """The shop receives over its own node (the platform never holds that money), then asks the platform to
    pay the balance out, and to refund it on chain from the platform's wallet. Both must be refused."""
    shop = await make_coffee_shop(ln_api, tokens)
    await connect(ln_api, shop, fake_node)
    await streaming(db, fake_node)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(ln_api, customer, shop, "lightning", "BTC")
    amount = int(order["payment"]["amount"])
    fake_node.report_settled(order["payment"]["lightning"]["payment_hash"], amount * 1000)
    await read_through(db, shop, fake_node)
    assert (await get_order(ln_api, customer, order["id"]))["payment_status"] == "confirmed"
    balances = (await (await ln_api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json())["balances"]
    assert [(b["asset"], b["custodial"], b["balance"]) for b in balances] == [("BTC", False, str(amount))]
    to = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    resp = await ln_api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                             json={"chain": "btc", "asset": "BTC", "amount": str(amount), "address": to})
    assert resp.status == 422, await resp.text()
    # the node that received it may not pay (no paying macaroon): beanpay cannot refund it, and says so
    resp = await ln_api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "crypto_paid"},
                             headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
    assert resp.status == 409, await resp.text()
    assert "node" in (await resp.json())["error"]["message"]
    assert not await db.fetchval("SELECT count(*) FROM transfers WHERE order_id = $1", uuid.UUID(order["id"]))


async def test_a_refund_of_money_in_the_shops_own_wallet_is_never_paid_by_the_platforms_node(
        ln_api, tokens: Tokens, db, engine, btc_wallet, btc_follower, lightning_service: Running,
        customer_node: LndClient) -> None:
    """A shop with its own Bitcoin wallet (non-custodial) and no node of its own: a refund claimed with a
    Lightning invoice would be paid by the platform's node (platform money for the shop's). Refused: the
    customer gives an address, and the shop's wallet pays."""
    shop = await make_coffee_shop(ln_api, tokens)
    own = MerchantWallet()
    resp = await ln_api.put(f"/v1/shops/{shop.id}/wallets/btc", headers=shop.merchant,
                            json={"account_key": own.account_key, "key_origin": own.key_origin})
    assert resp.status == 200, await resp.text()
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(ln_api, customer, shop, "btc", "BTC")
    await btc_wallet.pay(order["payment"]["address"], int(order["payment"]["amount"]))
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    assert (await get_order(ln_api, customer, order["id"]))["payment_status"] == "confirmed"
    resp = await ln_api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "crypto_paid"},
                             headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
    assert resp.status == 201, await resp.text()
    refund = await resp.json()
    assert refund["custodial"] is False
    bill = await customer_node.add_invoice(value_msat=int(refund["amount"]) * 1000, description_hash=b"\7" * 32,
                                           expiry_seconds=3600)
    resp = await ln_api.post(f"/v1/refund-claims/{refund['claim_token']}",
                             json={"lightning_invoice": bill.payment_request})
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["fields"][0]["field"] == "lightning_invoice"
    assert await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(refund["id"])) == "awaiting_claim"


async def test_one_lightning_invoice_cannot_claim_two_refunds(
        ln_api, tokens: Tokens, db, lightning_service: Running, customer_node: LndClient) -> None:
    """The customer (or whoever holds two claim links) claims two refunds with one invoice: lnd pays a hash
    once and answers the second attempt "already paid", which would complete a refund with nothing sent."""
    shop = await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    orders = [await place(ln_api, customer, shop, "lightning", "BTC") for _ in range(2)]
    for order in orders:
        await customer_node.pay(order["payment"]["lightning"]["bolt11"])

    async def both_paid() -> bool:
        return all([(await get_order(ln_api, customer, o["id"]))["payment_status"] == "confirmed" for o in orders])
    await until(both_paid, "both orders to be paid")
    amount = min(int(o["payment"]["amount"]) for o in orders)
    refunds = []
    for order in orders:
        resp = await ln_api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "custom", "amount": str(amount)},
                                 headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
        assert resp.status == 201, await resp.text()
        refunds.append(await resp.json())
    bill = await customer_node.add_invoice(value_msat=amount * 1000, description_hash=b"\11" * 32, expiry_seconds=3600)
    first = await ln_api.post(f"/v1/refund-claims/{refunds[0]['claim_token']}",
                              json={"lightning_invoice": bill.payment_request})
    assert first.status == 200, await first.text()
    second = await ln_api.post(f"/v1/refund-claims/{refunds[1]['claim_token']}",
                               json={"lightning_invoice": bill.payment_request})
    assert second.status == 422, await second.text()
    assert await db.fetchval("SELECT status FROM transfers WHERE id = $1",
                             uuid.UUID(refunds[1]["id"])) == "awaiting_claim"


async def test_a_customers_invoice_text_reaches_no_other_node_endpoint_and_the_nodes_words_stay_private(
        ln_api, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """The refund link's holder sends "invoices" that are paths (`..` resolved by the HTTP client would reach
    another endpoint with the shop's paying macaroon); and an invoice the node refuses must not echo the
    node's own error text back to the customer."""
    shop = await make_coffee_shop(ln_api, tokens)
    await connect(ln_api, shop, fake_node, pay_macaroon=fake_node.pay_macaroon, pay_daily_limit_sat=100_000)
    await streaming(db, fake_node)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(ln_api, customer, shop, "lightning", "BTC")
    fake_node.report_settled(order["payment"]["lightning"]["payment_hash"], int(order["payment"]["amount"]) * 1000)
    await read_through(db, shop, fake_node)
    resp = await ln_api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "crypto_paid"},
                             headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
    assert resp.status == 201, await resp.text()
    token = (await resp.json())["claim_token"]
    asked = len(fake_node.paths)
    for text in ("lnbcrt1x/../../balance/channels", "lnbcrt1x/..%2F..%2Fbalance%2Fchannels", "lnbcrt1x?y=1",
                 "lnbcrt1\u2215..\u2215getinfo"):
        resp = await ln_api.post(f"/v1/refund-claims/{token}", json={"lightning_invoice": text})
        assert resp.status == 422, (text, await resp.text())
    # nothing the customer sent reached the node (the service's own health checks and stream go on meanwhile)
    watching = {"/v1/getinfo", "/v1/balance/channels", "/v1/invoices/subscribe"}
    strays = [p for p in fake_node.paths[asked:] if p not in watching and not p.startswith("/v1/invoice/")]
    assert strays == [], fake_node.paths[asked:]
    resp = await ln_api.post(f"/v1/refund-claims/{token}", json={"lightning_invoice": "lnbcrt1validlooking"})
    assert resp.status == 422
    assert "/srv/lnd" not in await resp.text() and "internal" not in await resp.text()


async def test_credits_a_shops_node_got_before_custody_was_recorded_are_moved_to_the_shop(
        ln_api, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """Before 0022 a payment's custody was read from its on-chain wallet: what a shop's own node received
    counted as the platform's, and could be paid out. The migration's repair moves such credits to the shop
    (a balanced pair, from what the ledger says now, so a second run changes nothing)."""
    shop = await make_coffee_shop(ln_api, tokens)
    await connect(ln_api, shop, fake_node)
    await streaming(db, fake_node)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(ln_api, customer, shop, "lightning", "BTC")
    amount = int(order["payment"]["amount"])
    fake_node.report_settled(order["payment"]["lightning"]["payment_hash"], amount * 1000)
    await read_through(db, shop, fake_node)
    payment_id = await db.fetchval("SELECT id FROM crypto_payments WHERE order_id = $1", uuid.UUID(order["id"]))
    # the entries as a release before 0022 wrote them: no custody (the append-only rule set aside to do it)
    async with db.transaction() as conn:
        await conn.raw.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_append_only")
        await conn.raw.execute("UPDATE ledger_entries SET custodial = NULL WHERE payment_id = $1", payment_id)
        await conn.raw.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_append_only")

    async def held() -> list[tuple[bool, str]]:
        body = await (await ln_api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
        return sorted((b["custodial"], b["balance"]) for b in body["balances"] if b["balance"] != "0")

    assert await held() == [(True, str(amount))]  # what the old rule made of it
    assert await db.fetchval("SELECT ledger_custody_repair()") >= 1
    assert await held() == [(False, str(amount))]
    assert await db.fetchval("SELECT ledger_custody_repair()") == 0


async def test_two_lightning_refunds_paid_at_once_stay_within_the_nodes_daily_limit(
        ln_api, ln_settings, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """Two refunds, each within the shop's node's daily limit but not both, paid by three lightning
    processes at once (this test's two and the service's own loop): an attempt in progress counts for
    the others, decided under one lock per node, so exactly one is paid."""
    shop = await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    amount = 2_000  # each refund; the limit takes one and a half
    await connect(ln_api, shop, fake_node, pay_macaroon=fake_node.pay_macaroon, pay_daily_limit_sat=amount * 3 // 2)
    await streaming(db, fake_node)
    paid_orders = [await place(ln_api, customer, shop, "lightning", "BTC") for _ in range(2)]
    for order in paid_orders:
        fake_node.report_settled(order["payment"]["lightning"]["payment_hash"], int(order["payment"]["amount"]) * 1000)
    await read_through(db, shop, fake_node)
    refunds = []
    for order in paid_orders:
        resp = await ln_api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "custom", "amount": str(amount)},
                                 headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
        assert resp.status == 201, await resp.text()
        refunds.append(await resp.json())
    for refund in refunds:
        resp = await ln_api.post(f"/v1/refund-claims/{refund['claim_token']}",
                                 json={"lightning_invoice": fake_node.bill(amount)})
        assert resp.status == 200, await resp.text()
        resp = await ln_api.post(f"/v1/refunds/{refund['id']}/approve", headers=shop.merchant)
        assert resp.status == 200, await resp.text()
    await asyncio.gather(*(lightning_refunds.pay_due(db, ln_settings) for _ in range(2)))

    async def decided() -> bool:
        return all([s in ("completed", "failed") for s in await states()])

    async def states() -> list[str]:
        return [(await (await ln_api.get(f"/v1/refunds/{r['id']}", headers=shop.merchant)).json())["status"]
                for r in refunds]
    await until(decided, "both refunds to be decided")
    assert sorted(await states()) == ["completed", "failed"]
    assert len(fake_node.paid) == 1


async def test_a_node_that_streams_garbage_is_its_own_problem(
        ln_api, tokens: Tokens, db, lightning_service: Running, fake_node: FakeLnd) -> None:
    """A shop's node sends what is no invoice: its follower rides it out and reconnects; the lightning service
    (which follows every other shop's node too) keeps running."""
    shop = await make_coffee_shop(ln_api, tokens)
    await connect(ln_api, shop, fake_node)
    await streaming(db, fake_node)
    opened = fake_node.streams
    fake_node.report_garbage()

    async def reconnected() -> bool:
        return fake_node.streams > opened
    await until(reconnected, "the follower to reconnect after the garbage", within=30)
    assert lightning_service._task is not None and not lightning_service._task.done()
