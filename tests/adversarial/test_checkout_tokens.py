"""An order's checkout token opens its checkout page: its status, its claim code at the counter (who
holds it can take the coffee), a push subscription for it. Staff and read-only keys read the shop's
orders and invoices, and try to take the tokens from what they read."""

from __future__ import annotations

import uuid

from tests.adversarial.flow_support import api_key
from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop, place

pytest_plugins = ["tests.integration.engine_support"]


async def test_staff_and_read_only_keys_read_orders_without_their_checkout_tokens(api, tokens: Tokens, db) -> None:
    """The order, yes (they prepare it); its capability, no: only whoever placed it (its customer, or
    the integration that placed it for a buyer) and whoever already holds the token get it."""
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    token = order["checkout_token"]
    assert token
    reader = await api_key(db, shop.id, "orders:read")
    for name, headers in (("staff", shop.staff), ("read-only key", reader)):
        resp = await api.get(f"/v1/orders/{order['id']}", headers=headers)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["checkout_token"] is None, f"{name} read the order's checkout token"
        listed = await api.get(f"/v1/orders?shop_id={shop.id}", headers=headers)
        assert listed.status == 200 and token not in await listed.text()
    for headers in (customer, {"X-Checkout-Token": token}):
        resp = await api.get(f"/v1/orders/{order['id']}", headers=headers)
        assert resp.status == 200 and (await resp.json())["checkout_token"] == token
    # an integration that places an order for a walk-in buyer shows its link (and may ask for it again)
    till = await api_key(db, shop.id, "orders:create", "orders:read")
    placed = await place(api, till, shop, "eth", "ETH")
    again = await (await api.get(f"/v1/orders/{placed['id']}", headers=till)).json()
    assert again["checkout_token"] == placed["checkout_token"]
    # ... but not the link of an order someone else placed
    assert (await (await api.get(f"/v1/orders/{order['id']}", headers=till)).json())["checkout_token"] is None


async def test_staff_and_read_only_keys_read_invoices_without_their_checkout_tokens(
        api, tokens: Tokens, db) -> None:
    """An invoice's link is handed to its buyer by whoever made it: those who may make invoices at the
    shop read it (to send it again); staff and orders:read keys see the invoice only."""
    shop = await make_coffee_shop(api, tokens)
    maker = await api_key(db, shop.id, "invoices:create", "orders:read")
    resp = await api.post("/v1/invoices", json={"shop_id": shop.id, "amount": "5.00",
                                                "assets": [{"chain": "eth", "asset": "ETH"}]}, headers=maker)
    assert resp.status == 201, await resp.text()
    invoice = await resp.json()
    token = invoice["checkout_token"]
    assert token
    reader = await api_key(db, shop.id, "orders:read")
    for name, headers in (("staff", shop.staff), ("read-only key", reader)):
        resp = await api.get(f"/v1/invoices/{invoice['id']}", headers=headers)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["checkout_token"] is None, f"{name} read the invoice's checkout token"
        listed = await api.get(f"/v1/invoices?shop_id={shop.id}", headers=headers)
        assert listed.status == 200 and token not in await listed.text()
    for headers in (maker, shop.merchant, {"X-Checkout-Token": token}):
        resp = await api.get(f"/v1/invoices/{invoice['id']}", headers=headers)
        assert resp.status == 200 and (await resp.json())["checkout_token"] == token
