"""Lightning on real lnd nodes: an order paid from the customer's node, the settlement stream resumed after
the service is killed (each invoice credited once), stale invoices cancelled on the node, and a merchant's
own node connected with a macaroon that cannot spend."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from typing import Any

import pytest

from beanpay.chains.lightning.lnd import LndClient, LndError
from beanpay.deploy.devstack.lnd import LndNode
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, get_order, make_coffee_shop, place
from tests.integration.lightning_support import Running, until
from tests.integration.webhook_support import Receiver

pytest_plugins = ["tests.integration.lightning_support", "tests.integration.webhook_support"]


async def _credited(db: Any, shop_id: str) -> int:
    return int(await db.fetchval("SELECT coalesce(-sum(amount), 0) FROM ledger_entries WHERE account = $1 "
                                 "AND chain = 'btc' AND asset = 'BTC'", f"merchant:{shop_id}"))


async def _confirmed(api: Any, headers: dict[str, str], order_id: str) -> bool:
    return (await get_order(api, headers, order_id))["payment_status"] == "confirmed"


async def _lightning_order(api: Any, customer: dict[str, str], shop: Shop) -> dict[str, Any]:
    order = await place(api, customer, shop, "lightning", "BTC")
    assert order["payment"]["lightning_unavailable"] is None, order["payment"]
    return order


async def test_an_order_paid_over_lightning_is_confirmed_at_once_credited_and_its_webhooks_delivered(
        ln_api, tokens: Tokens, db, lightning_service: Running, customer_node: LndClient,
        merchant_node: LndNode, delivery_services) -> None:
    await delivery_services(1000)
    shop = await make_coffee_shop(ln_api, tokens)
    receiver = Receiver()
    await receiver.start()
    resp = await ln_api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": receiver.url, "event_types": ["*"]},
                             headers=shop.merchant)
    receiver.secret = (await resp.json())["secret"]
    secrets_watch.watch(receiver.secret)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await _lightning_order(ln_api, customer, shop)
    pay, ln = order["payment"], order["payment"]["lightning"]
    assert pay["chain"] == "btc" and ln["state"] == "open"
    assert ln["amount_msat"] == str(int(pay["amount"]) * 1000)  # the sat quote, rounded up like on chain
    # one URI for both rails: BIP21 with the address and amount, and the invoice
    assert ln["unified_uri"].startswith(f"bitcoin:{pay['address']}?amount=")
    assert "&lightning=LNBCRT" in ln["unified_uri"]
    decoded = await customer_node.decode(ln["bolt11"])
    merchant_client = merchant_node.client()
    merchant = await merchant_client.info()
    await merchant_client.close()
    assert decoded.destination == merchant.identity_pubkey and decoded.num_msat == int(ln["amount_msat"])
    assert decoded.description_hash == hashlib.sha256(ln["description"].encode()).hexdigest()
    assert order["id"] in ln["description"]
    window = dt.datetime.fromisoformat(pay["expires_at"]) - dt.datetime.now(dt.UTC)
    assert abs(decoded.expiry - window.total_seconds()) < 5  # the invoice expires with the payment window
    # asking again gives the same open invoice
    again = await ln_api.post(f"/v1/orders/{order['id']}/lightning-invoice", headers=customer)
    assert again.status == 200 and (await again.json())["payment_hash"] == ln["payment_hash"]

    await customer_node.pay(ln["bolt11"])
    await until(lambda: _confirmed(ln_api, customer, order["id"]), "the order to be confirmed")
    paid = await get_order(ln_api, customer, order["id"])
    assert paid["status"] == "confirmed" and paid["payment"]["amount_received"] == pay["amount"]
    assert paid["payment"]["lightning"]["state"] == "settled"
    assert await _credited(db, shop.id) == int(pay["amount"])
    wanted = {"order.created", "payment.initiated", "payment.lightning_invoice", "payment.confirmed",
              "order.confirmed"}

    async def delivered() -> bool:
        return wanted <= set(receiver.types.values())

    try:
        await until(delivered, "the order's webhooks", within=60)
        assert set(receiver.seen.values()) == {1} and receiver.bad_signatures == 0
    finally:
        await receiver.stop()


async def test_killing_the_service_while_invoices_settle_credits_each_exactly_once(
        ln_api, ln_settings, tokens: Tokens, db, customer_node: LndClient) -> None:
    shop = await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    orders = [await _lightning_order(ln_api, customer, shop) for _ in range(8)]
    service = Running(ln_settings, db)
    await service.start()
    first = asyncio.gather(*(customer_node.pay(o["payment"]["lightning"]["bolt11"]) for o in orders[:4]))
    await asyncio.sleep(0.05)
    await service.kill()  # mid-stream: some of those settle while nothing watches
    await first
    await asyncio.gather(*(customer_node.pay(o["payment"]["lightning"]["bolt11"]) for o in orders[4:]))
    await service.start()  # resumes from the last committed settle index
    try:
        for o in orders:
            await until(lambda o=o: _confirmed(ln_api, customer, o["id"]), "every order to be confirmed")
        await service.kill()
        await service.start()  # and a restart replays nothing twice
        await asyncio.sleep(1.0)
    finally:
        await service.kill()
    total = sum(int(o["payment"]["amount"]) for o in orders)
    assert await _credited(db, shop.id) == total
    rows = await db.fetch("SELECT count(*) AS n FROM ledger_entries WHERE account = $1", f"merchant:{shop.id}")
    assert rows[0]["n"] == len(orders)


async def test_an_invoice_past_its_time_is_cancelled_on_the_node_and_cannot_be_paid(
        ln_api, tokens: Tokens, db, lightning_service: Running, customer_node: LndClient) -> None:
    shop = await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await _lightning_order(ln_api, customer, shop)
    ln = order["payment"]["lightning"]
    await db.execute("UPDATE lightning_invoices SET expires_at = now() - interval '1 second' WHERE payment_hash = $1",
                     ln["payment_hash"])
    assert lightning_service.watcher is not None
    await until(lambda: _state(db, ln["payment_hash"], "cancelled"), "the invoice to be cancelled")
    with pytest.raises(LndError):
        await customer_node.pay(ln["bolt11"], wait_seconds=20)
    assert (await get_order(ln_api, customer, order["id"]))["payment_status"] == "pending"
    assert await _credited(db, shop.id) == 0


async def _state(db: Any, payment_hash: str, state: str) -> bool:
    return bool(await db.fetchval("SELECT state = $2 FROM lightning_invoices WHERE payment_hash = $1",
                                  payment_hash, state))


async def test_a_merchant_connects_its_own_node_with_a_macaroon_that_cannot_spend(
        ln_api, tokens: Tokens, db, lightning_service: Running, merchant_node: LndNode,
        customer_node: LndClient) -> None:
    shop = await make_coffee_shop(ln_api, tokens)
    owner = shop.merchant
    creds = merchant_node.beanpay_dir
    body = {"rest_url": (creds / "rest_url").read_text(), "tls_cert": (creds / "tls.cert").read_text()}
    # a macaroon that may spend is refused, with the field at fault
    admin = await ln_api.put(f"/v1/shops/{shop.id}/lightning-node",
                             json={**body, "macaroon": (creds / "admin.macaroon.hex").read_text()}, headers=owner)
    assert admin.status == 422 and (await admin.json())["error"]["fields"][0]["field"] == "macaroon"
    invoice_only = (creds / "invoice.macaroon.hex").read_text()
    resp = await ln_api.put(f"/v1/shops/{shop.id}/lightning-node", json={**body, "macaroon": invoice_only},
                            headers=owner)
    assert resp.status == 200, await resp.text()
    node = await resp.json()
    merchant_client = merchant_node.client()
    info = await merchant_client.info()
    await merchant_client.close()
    assert (node["pubkey"], node["alias"], node["custodial"]) == (info.identity_pubkey, info.alias, False)
    sealed = await db.fetchval("SELECT macaroon_sealed FROM lightning_nodes WHERE shop_id = $1", uuid.UUID(shop.id))
    assert bytes.fromhex(invoice_only) not in sealed  # stored sealed, never as it was given
    # the macaroon it holds cannot pay: the attempt fails at the node
    bill = await customer_node.add_invoice(value_msat=1000, description_hash=b"\0" * 32, expiry_seconds=60)
    merchant_only = LndClient(body["rest_url"], tls_cert_pem=body["tls_cert"], macaroon_hex=invoice_only)
    try:
        with pytest.raises(LndError) as refused:
            await merchant_only.pay(bill.payment_request)
        assert refused.value.permission_denied
    finally:
        await merchant_only.close()
    # orders of this shop are now invoiced on its own node, watched from its own checkpoint
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await _lightning_order(ln_api, customer, shop)
    own = await db.fetchval("SELECT n.shop_id FROM lightning_invoices l JOIN lightning_nodes n ON n.id = l.node_id "
                            "WHERE l.payment_hash = $1", order["payment"]["lightning"]["payment_hash"])
    assert str(own) == shop.id
    await customer_node.pay(order["payment"]["lightning"]["bolt11"])
    await until(lambda: _confirmed(ln_api, customer, order["id"]), "the order to be confirmed", within=30)


async def test_a_refund_claimed_with_a_lightning_invoice_is_paid_from_the_node_within_its_daily_limit(
        ln_api, tokens: Tokens, db, lightning_service: Running, customer_node: LndClient) -> None:
    shop = await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await _lightning_order(ln_api, customer, shop)
    await customer_node.pay(order["payment"]["lightning"]["bolt11"])
    await until(lambda: _confirmed(ln_api, customer, order["id"]), "the order to be confirmed")
    amount = int(order["payment"]["amount"])
    resp = await ln_api.post(f"/v1/orders/{order['id']}/refunds", json={"variant": "crypto_paid"},
                             headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
    assert resp.status == 201, await resp.text()
    refund = await resp.json()
    # an invoice for another amount is refused, with the field at fault
    wrong = await customer_node.add_invoice(value_msat=(amount - 1) * 1000, description_hash=b"\1" * 32,
                                            expiry_seconds=3600)
    resp = await ln_api.post(f"/v1/refund-claims/{refund['claim_token']}",
                             json={"lightning_invoice": wrong.payment_request})
    assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["field"] == "lightning_invoice"
    bill = await customer_node.add_invoice(value_msat=amount * 1000, description_hash=b"\2" * 32,
                                           expiry_seconds=3600)
    resp = await ln_api.post(f"/v1/refund-claims/{refund['claim_token']}",
                             json={"lightning_invoice": bill.payment_request})
    assert resp.status == 200, await resp.text()

    async def completed() -> bool:
        got = await (await ln_api.get(f"/v1/refunds/{refund['id']}", headers=shop.merchant)).json()
        return bool(got["status"] == "completed")

    await until(completed, "the refund to be paid")
    assert (await customer_node.lookup_invoice(bill.hash_hex)).state == "SETTLED"
    assert await _credited(db, shop.id) == 0  # credited by the payment, debited by its refund
    # the next refund would pass the node's daily limit (200,000 sat in this test): it fails, unpaid
    big = await _lightning_order(ln_api, customer, shop)
    await db.execute("UPDATE transfers SET amount = 200000, sent_at = now() WHERE id = $1", uuid.UUID(refund["id"]))
    await customer_node.pay(big["payment"]["lightning"]["bolt11"])
    await until(lambda: _confirmed(ln_api, customer, big["id"]), "the second order to be confirmed")
    resp = await ln_api.post(f"/v1/orders/{big['id']}/refunds", json={"variant": "crypto_paid"},
                             headers={**shop.merchant, "Idempotency-Key": uuid.uuid4().hex})
    second = await resp.json()
    bill = await customer_node.add_invoice(value_msat=int(big["payment"]["amount"]) * 1000,
                                           description_hash=b"\3" * 32, expiry_seconds=3600)
    resp = await ln_api.post(f"/v1/refund-claims/{second['claim_token']}",
                             json={"lightning_invoice": bill.payment_request})
    assert resp.status == 200, await resp.text()

    async def failed() -> dict[str, Any] | None:
        got = await (await ln_api.get(f"/v1/refunds/{second['id']}", headers=shop.merchant)).json()
        return got if got["status"] == "failed" else None

    await until(failed, "the refund to fail on the daily limit")
    assert "daily limit" in ((await failed()) or {})["failure"]
    assert (await customer_node.lookup_invoice(bill.hash_hex)).state == "OPEN"


async def test_the_merchant_node_restarting_under_load_falls_back_to_on_chain_and_loses_nothing(
        ln_api, tokens: Tokens, db, lightning_service: Running, customer_node: LndClient,
        merchant_node: LndNode) -> None:
    shop = await make_coffee_shop(ln_api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    orders = [await _lightning_order(ln_api, customer, shop) for _ in range(6)]
    paying = [asyncio.create_task(customer_node.pay(o["payment"]["lightning"]["bolt11"], wait_seconds=30))
              for o in orders[:3]]
    await asyncio.sleep(0.05)
    await asyncio.to_thread(merchant_node.stop)  # while those payments are on their way
    try:
        await asyncio.gather(*paying, return_exceptions=True)  # some may fail: the node went away

        async def node_down() -> bool:
            return bool(await db.fetchval("SELECT health = 'down' FROM lightning_nodes WHERE shop_id IS NULL "
                                          "ORDER BY updated_at DESC LIMIT 1"))

        await until(node_down, "the node to be seen down")
        # the checkout offers on chain only, and says why; so does the service (its /readyz reports it)
        fallback = await place(ln_api, customer, shop, "lightning", "BTC")
        assert fallback["payment"]["lightning"] is None
        assert "cannot be reached" in fallback["payment"]["lightning_unavailable"]
        assert fallback["payment"]["address"].startswith("bcrt1")
        assert lightning_service.watcher is not None and "platform" in lightning_service.watcher.problems
        from beanpay.engine.lightning.watcher import NODE_READY
        assert NODE_READY.labels("platform")._value.get() == 0
    finally:
        await asyncio.to_thread(merchant_node.start)

    merchant_id = None

    async def channel_active() -> bool:  # the customer's wallet reconnects (at once, not on lnd's backoff)
        nonlocal merchant_id
        if merchant_id is None:
            client = merchant_node.client()
            try:
                merchant_id = (await client.info()).identity_pubkey
            finally:
                await client.close()
        try:
            await customer_node.connect_peer(merchant_id, f"127.0.0.1:{merchant_node.p2p_port}")
        except LndError:
            pass  # connecting already, or just connected
        return any(ch.get("active") for ch in await customer_node.channels())

    await until(channel_active, "the channel to be active again", within=60)
    merchant = merchant_node.client()

    async def all_settled() -> bool:
        """What failed while the node was away is paid again (lnd pays one hash once: a payment still
        resolving after the restart answers "in transition", and is looked at again)."""
        settled = True
        for o in orders:
            if (await merchant.lookup_invoice(o["payment"]["lightning"]["payment_hash"])).state == "SETTLED":
                continue
            settled = False
            try:
                await customer_node.pay(o["payment"]["lightning"]["bolt11"], wait_seconds=30)
            except LndError as e:
                if "in transition" not in e.message and "already paid" not in e.message:
                    raise
        return settled

    try:
        await until(all_settled, "every invoice to be settled", within=90)
    finally:
        await merchant.close()
    for o in orders:
        await until(lambda o=o: _confirmed(ln_api, customer, o["id"]), "every order to be confirmed", within=30)
    assert await _credited(db, shop.id) == sum(int(o["payment"]["amount"]) for o in orders)
    assert await db.fetchval("SELECT count(*) FROM ledger_entries WHERE account = $1",
                             f"merchant:{shop.id}") == len(orders)
