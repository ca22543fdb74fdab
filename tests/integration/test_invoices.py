"""Invoices for integrations: an amount and the assets offered; the quote and address made only when the
customer picks an asset at checkout, then the same payment path as coffee orders."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop, pay_directly

pytest_plugins = ["tests.integration.engine_support"]


async def invoice(api: Any, headers: dict[str, str], shop_id: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    body = {"shop_id": shop_id, "amount": "12.40", "assets": [{"chain": "eth", "asset": "ETH"},
                                                              {"chain": "eth", "asset": "tUSDC"},
                                                              {"chain": "btc", "asset": "BTC"}], **fields}
    resp = await api.post("/v1/invoices", json=body, headers=headers)
    return resp.status, await resp.json()


async def test_the_asset_is_picked_at_checkout_and_paid_like_an_order(api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    status, made = await invoice(api, shop.merchant, shop.id, order_ref="INV-7", buyer_email="ana@example.com",
                                 redirect_url="https://shop.example/thanks", expires_in_seconds=1800)
    assert status == 201, made
    assert made["status"] == "new" and made["payment"] is None and made["order_id"] is None  # no quote, no address
    assert made["assets"] == ["eth/ETH", "eth/tUSDC", "btc/BTC"] and made["order_ref"] == "INV-7"
    token = {"X-Checkout-Token": made["checkout_token"]}
    # the customer reads it with the token alone, and picks an asset it offers
    seen = await (await api.get(f"/v1/invoices/{made['id']}", headers=token)).json()
    assert seen["status"] == "new"
    assert (await api.get(f"/v1/invoices/{made['id']}")).status == 401
    resp = await api.post(f"/v1/invoices/{made['id']}/payment", json={"chain": "btc", "asset": "ETH"}, headers=token)
    assert resp.status == 422
    resp = await api.post(f"/v1/invoices/{made['id']}/payment", json={"chain": "eth", "asset": "tUSDC"},
                          headers=token)
    picked = await resp.json()
    assert resp.status == 200 and picked["status"] == "pending", picked
    pay = picked["payment"]
    assert pay["asset"] == "tUSDC" and pay["amount"] == "12400000" and pay["address"].startswith("0x")
    assert pay["expires_at"] == made["expires_at"]  # the invoice's own expiry
    resp = await api.post(f"/v1/invoices/{made['id']}/payment", json={"chain": "eth", "asset": "ETH"}, headers=token)
    assert resp.status == 409  # picked once
    await pay_directly(db, {"payment": pay})
    await engine()
    paid = await (await api.get(f"/v1/invoices/{made['id']}", headers=shop.merchant)).json()
    assert paid["status"] == "confirmed" and paid["payment"]["amount_received"] == "12400000"
    # the same ledger and events as a coffee order's payment
    balances = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
    assert {"chain": "eth", "asset": "tUSDC", "balance": "12400000", "decimals": 6, "custodial": True} \
        in balances["balances"]
    events = {r["event_type"] for r in await db.fetch(
        "SELECT event_type FROM event_outbox WHERE aggregate_id = ANY($1::text[])", [made["id"], paid["order_id"]])}
    assert {"invoice.created", "order.created", "payment.initiated", "payment.confirmed"} <= events
    # an invoice's order is not a coffee order: nothing to prepare or hand over
    resp = await api.post(f"/v1/orders/{paid['order_id']}/status", json={"status": "preparing"}, headers=shop.staff)
    assert resp.status == 409


async def test_an_invoices_own_tolerance_and_speed_decide_its_payment(api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    _, made = await invoice(api, shop.merchant, shop.id, underpay_tolerance_bps=500, speed="medium")
    token = {"X-Checkout-Token": made["checkout_token"]}
    picked = await (await api.post(f"/v1/invoices/{made['id']}/payment", json={"chain": "eth", "asset": "tUSDC"},
                                   headers=token)).json()
    pay = picked["payment"]
    # 4% short, with one confirmation only: within this invoice's 5% and its speed
    await db.execute(
        """INSERT INTO deposits (chain, asset, txid, output_index, address, amount, block_hash, block_height, status)
           VALUES ('eth', 'tUSDC', $1, 0, $2, $3, $4, 1, 'confirming')""",
        "0x" + uuid.uuid4().hex * 2, pay["address"], int(pay["amount"]) * 96 // 100, "0x" + uuid.uuid4().hex * 2)
    await engine()
    assert (await (await api.get(f"/v1/invoices/{made['id']}", headers=token)).json())["status"] == "confirmed"


async def test_invoices_are_listed_by_status_and_exception_and_can_be_cancelled(api, tokens: Tokens, db,
                                                                                engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    _, fresh = await invoice(api, shop.merchant, shop.id)
    _, short = await invoice(api, shop.merchant, shop.id)
    token = {"X-Checkout-Token": short["checkout_token"]}
    pay = (await (await api.post(f"/v1/invoices/{short['id']}/payment", json={"chain": "eth", "asset": "ETH"},
                                 headers=token)).json())["payment"]
    await pay_directly(db, {"payment": pay}, amount=int(pay["amount"]) // 2)
    await engine()
    listed = await (await api.get(f"/v1/invoices?shop_id={shop.id}&exception=underpaid",
                                  headers=shop.merchant)).json()
    assert [i["id"] for i in listed["items"]] == [short["id"]] and listed["items"][0]["status"] == "underpaid"
    listed = await (await api.get(f"/v1/invoices?shop_id={shop.id}&status=new", headers=shop.merchant)).json()
    assert [i["id"] for i in listed["items"]] == [fresh["id"]]
    assert (await api.post(f"/v1/invoices/{short['id']}/cancel", headers=shop.merchant)).status == 409  # paid some
    resp = await api.post(f"/v1/invoices/{fresh['id']}/cancel", headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    resp = await api.post(f"/v1/invoices/{fresh['id']}/payment", json={"chain": "eth", "asset": "ETH"},
                          headers={"X-Checkout-Token": fresh["checkout_token"]})
    assert resp.status == 409
    # bad input names its field
    status, body = await invoice(api, shop.merchant, shop.id, assets=[{"chain": "doge", "asset": "DOGE"}])
    assert status == 422 and body["error"]["fields"][0]["field"] == "assets[0]"
    status, body = await invoice(api, shop.merchant, shop.id, amount="1.234")
    assert status == 422 and body["error"]["fields"][0]["field"] == "amount"
    assert (await invoice(api, shop.staff, shop.id))[0] == 403


async def test_an_invoice_no_one_picked_an_asset_for_expires(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    _, made = await invoice(api, shop.merchant, shop.id, expires_in_seconds=60)
    await db.execute("UPDATE invoices SET expires_at = now() - interval '1 second' WHERE id = $1",
                     uuid.UUID(made["id"]))
    token = {"X-Checkout-Token": made["checkout_token"]}
    assert (await (await api.get(f"/v1/invoices/{made['id']}", headers=token)).json())["status"] == "expired"
    resp = await api.post(f"/v1/invoices/{made['id']}/payment", json={"chain": "eth", "asset": "ETH"}, headers=token)
    assert resp.status == 410
    assert await db.fetchval("SELECT order_id FROM invoices WHERE id = $1", uuid.UUID(made["id"])) is None
