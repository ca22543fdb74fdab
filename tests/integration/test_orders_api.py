"""The orders API: validation with the field at fault, idempotent creation, who sees what, changes
while unpaid, cancellation, the shop's moves, and stock reserved and released."""

from __future__ import annotations

import json
import uuid

from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support"]


async def test_bad_orders_name_the_field_at_fault(api, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer")

    async def post(body: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
        resp = await api.post("/v1/orders", json=body, headers=customer)
        return resp.status, await resp.json()

    base = {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "customizations": {"size": ["small"]}}],
            "payment": {"chain": "eth", "asset": "ETH"}}
    status, body = await post({**base, "items": [{"product_id": str(uuid.uuid4())}]})
    assert status == 422 and body["error"]["fields"][0]["field"] == "items[0].product_id"
    status, body = await post({**base, "items": [{"product_id": shop.product_id}]})
    assert status == 422 and body["error"]["fields"][0]["field"] == "items[0].customizations.size"
    status, body = await post({**base, "items": [{"product_id": shop.product_id,
                                                  "customizations": {"size": ["huge"]}}]})
    assert status == 422 and "huge" in body["error"]["fields"][0]["message"]
    status, body = await post({**base, "payment": {"chain": "eth", "asset": "DOGE"}})
    assert status == 422 and body["error"]["fields"][0]["field"] == "payment.asset"
    status, body = await post({**base, "order_type": "delivery"})
    assert status == 422
    status, body = await post({**base, "items": [{"product_id": shop.product_id, "quantity": 0,
                                                  "customizations": {"size": ["small"]}}]})
    assert status == 422 and body["error"]["fields"][0]["field"] == "$.items[0].quantity"
    resp = await api.post("/v1/orders", json=base, headers=shop.staff)
    assert resp.status == 403
    resp = await api.post("/v1/orders", json=base, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status == 401


async def test_same_key_same_order_other_body_conflict(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens, stock=10)
    customer = tokens.header("customer", sub=uuid.uuid4())
    first = await place(api, customer, shop, "eth", "tUSDC", key="order-key-1")
    again = await place(api, customer, shop, "eth", "tUSDC", key="order-key-1")
    assert again["id"] == first["id"] and again["payment"]["address"] == first["payment"]["address"]
    body = {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "quantity": 2,
                                           "customizations": {"size": ["small"]}}],
            "payment": {"chain": "eth", "asset": "tUSDC"}}
    resp = await api.post("/v1/orders", json=body, headers={**customer, "Idempotency-Key": "order-key-1"})
    assert resp.status == 409
    assert await db.fetchval("SELECT count(*) FROM coffee_orders WHERE shop_id = $1", uuid.UUID(shop.id)) == 1
    supply = await db.fetchrow("SELECT reserved FROM coffee_supplies WHERE id = $1", uuid.UUID(shop.supply_id))
    assert supply["reserved"] == 1


async def test_who_sees_an_order_and_listing(api, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    other_shop = await make_coffee_shop(api, tokens)
    me = uuid.uuid4()
    customer = tokens.header("customer", sub=me)
    order = await place(api, customer, shop, "btc", "BTC")
    assert (await api.get(f"/v1/orders/{order['id']}", headers=tokens.header("customer"))).status == 404
    assert (await api.get(f"/v1/orders/{order['id']}", headers=other_shop.staff)).status == 404
    assert (await api.get(f"/v1/orders/{order['id']}", headers=shop.staff)).status == 200
    mine = await (await api.get("/v1/orders", headers=customer)).json()
    assert [o["id"] for o in mine["items"]] == [order["id"]]
    resp = await api.get("/v1/orders", headers=shop.staff)
    assert resp.status == 422
    resp = await api.get(f"/v1/orders?shop_id={other_shop.id}", headers=shop.staff)
    assert resp.status == 403
    theirs = await (await api.get(f"/v1/orders?shop_id={shop.id}&status=pending", headers=shop.staff)).json()
    assert [o["id"] for o in theirs["items"]] == [order["id"]]


async def test_change_while_unpaid_requotes_and_moves_the_reservation(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens, stock=5)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    resp = await api.patch(f"/v1/orders/{order['id']}", headers=customer, json={
        "items": [{"product_id": shop.product_id, "quantity": 3, "customizations": {"size": ["large"],
                                                                                   "extras": ["vanilla", "shot"]}}],
        "special_instructions": "extra hot", "version": order["version"]})
    assert resp.status == 200, await resp.text()
    changed = await resp.json()
    assert changed["total_amount"] == "19.65"  # (4.50 + 0.75 + 0.40 + 0.90) * 3
    assert changed["payment"]["amount"] == "19650000" and changed["payment"]["address"] == order["payment"]["address"]
    assert changed["special_instructions"] == "extra hot"
    assert await db.fetchval("SELECT reserved FROM coffee_supplies WHERE id = $1", uuid.UUID(shop.supply_id)) == 3
    stale = await api.patch(f"/v1/orders/{order['id']}", headers=customer,
                            json={"special_instructions": "x", "version": order["version"]})
    assert stale.status == 409
    too_many = await api.patch(f"/v1/orders/{order['id']}", headers=customer, json={
        "items": [{"product_id": shop.product_id, "quantity": 6, "customizations": {"size": ["small"]}}]})
    assert too_many.status == 409
    assert await db.fetchval("SELECT reserved FROM coffee_supplies WHERE id = $1", uuid.UUID(shop.supply_id)) == 3


async def test_cancel_releases_stock_and_illegal_moves_name_the_state(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens, stock=2)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH", quantity=2)
    resp = await api.post("/v1/orders", headers={**customer, "Idempotency-Key": uuid.uuid4().hex}, json={
        "shop_id": shop.id, "items": [{"product_id": shop.product_id, "customizations": {"size": ["small"]}}],
        "payment": {"chain": "eth", "asset": "ETH"}})
    assert resp.status == 409 and (await resp.json())["error"]["detail"]["available"] == "0"
    resp = await api.post(f"/v1/orders/{order['id']}/status", json={"status": "preparing"}, headers=shop.staff)
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["detail"] == {"current_status": "pending", "requested_status": "preparing"}
    resp = await api.post(f"/v1/orders/{order['id']}/cancel", headers=customer)
    assert resp.status == 200
    cancelled = await resp.json()
    assert (cancelled["status"], cancelled["payment_status"]) == ("cancelled", "expired")
    assert await db.fetchval("SELECT reserved FROM coffee_supplies WHERE id = $1", uuid.UUID(shop.supply_id)) == 0
    resp = await api.post(f"/v1/orders/{order['id']}/cancel", headers=customer)
    assert resp.status == 409 and "cancelled" in (await resp.json())["error"]["message"]
    await place(api, customer, shop, "eth", "ETH", quantity=2)  # the stock is back


async def test_staff_moves_a_paid_order_through_the_kitchen(api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    await pay_directly(db, order)
    await engine()
    for status in ("preparing", "ready"):
        resp = await api.post(f"/v1/orders/{order['id']}/status", json={"status": status}, headers=shop.staff)
        assert resp.status == 200 and (await resp.json())["status"] == status
    resp = await api.post(f"/v1/orders/{order['id']}/status", json={"status": "preparing"}, headers=shop.staff)
    assert resp.status == 409
    assert (await get_order(api, customer, order["id"]))["status"] == "ready"


async def test_reserving_below_the_reorder_level_alerts_once(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens, stock=7)  # reorder level 5
    customer = tokens.header("customer", sub=uuid.uuid4())

    async def alerts() -> list[dict]:  # type: ignore[type-arg]
        rows = await db.fetch("SELECT payload FROM event_outbox WHERE event_type = 'supply.low_stock_alert' "
                              "AND aggregate_id = $1", shop.supply_id)
        return [json.loads(r["payload"]) for r in rows]

    await place(api, customer, shop, "eth", "tUSDC")  # 6 available: above the level
    assert await alerts() == []
    await place(api, customer, shop, "eth", "tUSDC", quantity=2)  # 4 available: crossed
    (alert,) = await alerts()
    assert (alert["available"], alert["reserved"], alert["reorder_level"]) == (4, 3, 5)
    await place(api, customer, shop, "eth", "tUSDC")  # still below: no second alert
    assert len(await alerts()) == 1


async def test_placing_an_order_is_two_round_trips_or_four_in_a_transaction(api, tokens: Tokens, db,
                                                                            monkeypatch) -> None:
    """The common case: one read and one write sent on their own (the write commits as it ends), however
    many items, with stock tracked or not, with a key. Bitcoin (its address index is allocated
    gap-free), and an order whose write declines (it takes a supply below its reorder level, so an alert
    is due; or stock is short), run BEGIN, read, write, COMMIT; the declined write left nothing behind."""
    from beanpay import db as database

    trips: list[str] = []
    for name in ("execute", "fetch", "fetchrow", "fetchval"):
        original = getattr(database.PgConnection, name)

        def counted(self, query, *args, _original=original):  # type: ignore[no-untyped-def]
            trips.append(query.name)
            return _original(self, query, *args)

        monkeypatch.setattr(database.PgConnection, name, counted)
    original_transaction = database.Pool.transaction

    def transaction(self):  # type: ignore[no-untyped-def]
        trips.extend(["BEGIN", "COMMIT"])
        return original_transaction(self)

    monkeypatch.setattr(database.Pool, "transaction", transaction)
    shop = await make_coffee_shop(api, tokens, stock=100)
    customer = tokens.header("customer", sub=uuid.uuid4())
    for chain, asset in (("eth", "tUSDC"), ("eth", "ETH")):
        trips.clear()
        await place(api, customer, shop, chain, asset, quantity=2)
        assert trips == ["begin_order", "write_order"], trips
    trips.clear()
    await place(api, customer, shop, "btc", "BTC", quantity=2)
    assert sorted(trips) == sorted(["BEGIN", "begin_order", "write_order", "COMMIT"]), trips

    small = await make_coffee_shop(api, tokens, stock=8)  # reorder level 5
    trips.clear()
    await place(api, customer, small, "eth", "tUSDC", quantity=2)  # 6 left: nothing to alert
    assert trips == ["begin_order", "write_order"], trips
    trips.clear()
    await place(api, customer, small, "eth", "tUSDC", quantity=2)  # 4 left: the alert is decided in Python
    declined, again = trips[:2], trips[2:]
    assert declined == ["begin_order", "write_order"]
    assert sorted(again) == sorted(["BEGIN", "begin_order", "write_order", "insert_events", "COMMIT"]), trips
    supply = uuid.UUID(small.supply_id)
    assert await db.fetchval("SELECT reserved FROM coffee_supplies WHERE id = $1", supply) == 4  # not 6
    assert await db.fetchval("SELECT count(*) FROM coffee_orders WHERE shop_id = $1", uuid.UUID(small.id)) == 2
    assert await db.fetchval("SELECT count(*) FROM event_outbox WHERE event_type = 'supply.low_stock_alert' "
                             "AND aggregate_id = $1", small.supply_id) == 1
    trips.clear()
    resp = await api.post("/v1/orders", headers=customer, json={
        "shop_id": small.id, "payment": {"chain": "eth", "asset": "ETH"},
        "items": [{"product_id": small.product_id, "quantity": 5, "customizations": {"size": ["small"]}}]})
    assert resp.status == 409 and (await resp.json())["error"]["detail"]["available"] == "4"
    assert trips[:2] == ["begin_order", "write_order"] and "BEGIN" in trips[2:]
    assert await db.fetchval("SELECT reserved FROM coffee_supplies WHERE id = $1", supply) == 4
