"""Carts and favourites: lines priced live from the menu with the order's field errors, checkout into
an order under the order's Idempotency-Key rules (the cart goes in the order's transaction), expiry,
ownership; favourites cached under user:{id}:favorites with the design's TTL and invalidated."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import redis.asyncio as aioredis

from beanpay.engine import carts
from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop
from tests.integration.helpers import put_on_menu

pytest_plugins = ["tests.integration.engine_support"]


def line(shop: Any, size: str = "small", quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"shop_id": shop.id, "product_id": shop.product_id, "quantity": quantity,
            "customizations": {"size": [size], **extra}}


async def add(api: Any, who: dict[str, str], body: dict[str, Any]) -> Any:
    return await api.post("/v1/cart/items", json=body, headers={**who, "Idempotency-Key": uuid.uuid4().hex})


async def test_a_cart_is_priced_live_and_checked_out_into_an_order_once(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens, price="4.00")
    me = tokens.header("customer", sub=uuid.uuid4())
    first = await add(api, me, line(shop, "large", 2, extras=["vanilla"]))
    assert first.status == 201, await first.text()
    cart = await first.json()
    assert [(i["quantity"], i["unit_price"], i["line_total"]) for i in cart["items"]] == [(2, "5.15", "10.30")]
    assert (cart["total"], cart["currency"], cart["orderable"]) == ("10.30", "USD", True)
    cart = await (await add(api, me, line(shop))).json()
    assert cart["total"] == "14.30" and len(cart["items"]) == 2

    await put_on_menu(api, tokens, shop.id, shop.product_id, "5.00")  # the shop changes its price
    seen = await (await api.get(f"/v1/cart?shop_id={shop.id}", headers=me)).json()
    assert seen["total"] == "17.30"  # 2 x 6.15 + 5.00: priced now, not when added

    item = seen["items"][1]["id"]
    changed = await api.patch(f"/v1/cart/items/{item}", json={"quantity": 3}, headers=me)
    assert changed.status == 200 and (await changed.json())["total"] == "27.30"
    bad = await api.patch(f"/v1/cart/items/{item}", json={"customizations": {"size": ["huge"]}}, headers=me)
    assert bad.status == 422
    assert [f["field"] for f in (await bad.json())["error"]["fields"]] == ["customizations.size"]

    key = uuid.uuid4().hex
    body = {"shop_id": shop.id, "payment": {"chain": "eth", "asset": "tUSDC"}, "special_instructions": "oat milk"}
    placed = await api.post("/v1/cart/checkout", json=body, headers={**me, "Idempotency-Key": key})
    assert placed.status == 201, await placed.text()
    order = await placed.json()
    assert order["total_amount"] == "27.30" and order["payment"]["amount"] == "27300000"
    assert [(i["quantity"], i["customizations"]["size"]) for i in order["items"]] == [(2, ["large"]), (3, ["small"])]
    assert order["special_instructions"] == "oat milk"
    empty = await (await api.get(f"/v1/cart?shop_id={shop.id}", headers=me)).json()
    assert empty["items"] == [] and empty["version"] is None

    again = await api.post("/v1/cart/checkout", json=body, headers={**me, "Idempotency-Key": key})
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert (await again.json())["id"] == order["id"]
    other = await api.post("/v1/cart/checkout", json={**body, "special_instructions": "x"},
                           headers={**me, "Idempotency-Key": key})
    assert other.status == 409
    nothing = await api.post("/v1/cart/checkout", json=body, headers={**me, "Idempotency-Key": uuid.uuid4().hex})
    assert nothing.status == 422 and (await nothing.json())["error"]["fields"][0]["field"] == "items"
    assert await db.fetchval("SELECT count(*) FROM coffee_orders WHERE user_id = $1",
                             uuid.UUID(order["user_id"])) == 1


async def test_lines_off_the_menu_get_the_orders_field_errors(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    me = tokens.header("customer", sub=uuid.uuid4())
    refused = await add(api, me, line(shop, "huge"))
    assert refused.status == 422
    assert (await refused.json())["error"]["fields"][0]["field"] == "customizations.size"
    unknown = await add(api, me, {**line(shop), "product_id": str(uuid.uuid4())})
    assert unknown.status == 422 and (await unknown.json())["error"]["fields"][0]["field"] == "product_id"
    assert (await add(api, me, line(shop))).status == 201
    await db.execute("UPDATE shop_products SET available = false WHERE shop_id = $1", uuid.UUID(shop.id))
    cart = await (await api.get(f"/v1/cart?shop_id={shop.id}", headers=me)).json()
    assert cart["orderable"] is False and cart["total"] == "0.00"
    assert cart["items"][0]["problems"] == [{"field": "items[0].product_id",
                                             "message": "not available on this shop's menu"}]
    checkout = await api.post("/v1/cart/checkout", json={"shop_id": shop.id, "payment": {"chain": "btc",
                                                                                          "asset": "BTC"}},
                              headers={**me, "Idempotency-Key": uuid.uuid4().hex})
    assert checkout.status == 422  # exactly what POST /v1/orders answers for these items
    assert (await checkout.json())["error"]["fields"] == [{"field": "items[0].product_id",
                                                           "message": "not available on this shop's menu"}]


async def test_carts_expire_and_are_nobody_elses(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    me, you = tokens.header("customer", sub=uuid.uuid4()), tokens.header("customer", sub=uuid.uuid4())
    cart = await (await add(api, me, line(shop, quantity=2))).json()
    item = cart["items"][0]["id"]
    assert dt.datetime.fromisoformat(cart["expires_at"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=6)
    assert (await api.patch(f"/v1/cart/items/{item}", json={"quantity": 1}, headers=you)).status == 404
    assert (await api.delete(f"/v1/cart/items/{item}", headers=you)).status == 404
    assert (await (await api.get(f"/v1/cart?shop_id={shop.id}", headers=you)).json())["items"] == []
    assert (await api.get(f"/v1/cart?shop_id={shop.id}", headers=shop.staff)).status == 403
    assert (await api.get(f"/v1/cart?shop_id={shop.id}")).status == 401

    await db.execute("UPDATE carts SET expires_at = now() - interval '2 days' WHERE id IN "
                     "(SELECT cart_id FROM cart_items WHERE id = $1)", uuid.UUID(item))
    assert (await (await api.get(f"/v1/cart?shop_id={shop.id}", headers=me)).json())["items"] == []
    fresh = await (await add(api, me, line(shop))).json()
    assert [i["quantity"] for i in fresh["items"]] == [1]  # the expired lines did not come back
    await db.execute("UPDATE carts SET expires_at = now() - interval '2 days' WHERE shop_id = $1", uuid.UUID(shop.id))
    assert await carts.purge_expired(db, dt.timedelta(days=1), 1000) >= 1
    assert await db.fetchval("SELECT count(*) FROM carts WHERE shop_id = $1", uuid.UUID(shop.id)) == 0


async def test_favourites_are_cached_under_the_design_key(api, tokens: Tokens, chain_settings) -> None:
    shop = await make_coffee_shop(api, tokens)
    sub = uuid.uuid4()
    me = tokens.header("customer", sub=sub)
    r = aioredis.Redis.from_url(chain_settings.redis_dsn)
    try:
        assert (await (await api.get("/v1/users/me/favorites", headers=me)).json()) == {"items": []}
        assert await r.exists(f"user:{sub}:favorites") == 1
        assert 3600 - 60 < await r.ttl(f"user:{sub}:favorites") <= 3600
        put = await api.put(f"/v1/users/me/favorites/product/{shop.product_id}", headers=me)
        assert put.status == 200
        assert await r.exists(f"user:{sub}:favorites") == 0  # invalidated by the change
        assert (await api.put(f"/v1/users/me/favorites/shop/{shop.id}", headers=me)).status == 200
        assert (await api.put(f"/v1/users/me/favorites/shop/{shop.id}", headers=me)).status == 200  # again: same
        listed = await (await api.get("/v1/users/me/favorites", headers=me)).json()
        assert [(f["kind"], f["id"]) for f in listed["items"]] == [("shop", shop.id), ("product", shop.product_id)]
        assert (await api.delete(f"/v1/users/me/favorites/shop/{shop.id}", headers=me)).status == 204
        assert (await api.delete(f"/v1/users/me/favorites/shop/{shop.id}", headers=me)).status == 204  # again
        listed = await (await api.get("/v1/users/me/favorites", headers=me)).json()
        assert [f["kind"] for f in listed["items"]] == ["product"]
        assert (await api.put(f"/v1/users/me/favorites/product/{uuid.uuid4()}", headers=me)).status == 404
        assert (await api.put(f"/v1/users/me/favorites/drink/{shop.id}", headers=me)).status == 404
        assert (await api.get("/v1/users/me/favorites")).status == 401
    finally:
        await r.aclose()
