"""Claims: one per paid order however many ask at once, processed by the right shop's staff,
expiring and freeing the order for a new claim."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from beanpay.engine.expiry import expire_claims
from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support"]


async def _claim(api: Any, headers: dict[str, str], order_id: str) -> tuple[int, dict[str, Any]]:
    resp = await api.post(f"/v1/orders/{order_id}/claim", headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    return resp.status, await resp.json()


async def test_claim_and_process_a_paid_order(api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    other = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    status, body = await _claim(api, customer, order["id"])
    assert status == 409 and body["error"]["detail"]["current_status"] == "pending"
    await pay_directly(db, order)
    await engine()
    status, claim = await _claim(api, customer, order["id"])
    assert status == 201 and len(claim["claim_code"]) == 8 and claim["status"] == "active"
    status, body = await _claim(api, customer, order["id"])
    assert status == 409 and "already claimed" in body["error"]["message"]
    current = await api.get(f"/v1/orders/{order['id']}/claim", headers=customer)
    assert current.status == 200 and (await current.json())["claim_code"] == claim["claim_code"]
    assert (await api.get(f"/v1/orders/{order['id']}/claim", headers=tokens.header("customer"))).status == 404

    code = claim["claim_code"]
    resp = await api.post(f"/v1/claims/{code}/process", headers=other.staff)
    assert resp.status == 403
    resp = await api.post("/v1/claims/ZZZZZZZZ/process", headers=shop.staff)
    assert resp.status == 404
    resp = await api.post(f"/v1/claims/{code.lower()[:4]}-{code.lower()[4:]}/process", headers=shop.staff)
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["claim"]["status"] == "processed" and done["order_status"] == "completed"
    resp = await api.post(f"/v1/claims/{code}/process", headers=shop.staff)
    assert resp.status == 409
    assert (await get_order(api, customer, order["id"]))["status"] == "completed"
    events = [r["event_type"] for r in await db.fetch(
        "SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", order["id"])]
    assert events[-4:] == ["order.claimed", "claim.processed", "order.completed", "order.picked_up"]


async def test_an_expired_claim_frees_the_order(api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    await pay_directly(db, order)
    await engine()
    status, first = await _claim(api, customer, order["id"])
    assert status == 201
    await db.execute("UPDATE order_claims SET expires_at = now() - interval '1 second' WHERE id = $1",
                     uuid.UUID(first["id"]))
    resp = await api.post(f"/v1/claims/{first['claim_code']}/process", headers=shop.staff)
    assert resp.status == 409 and "expired" in (await resp.json())["error"]["message"]
    assert await expire_claims(db, 1000) >= 1
    status, second = await _claim(api, customer, order["id"])
    assert status == 201 and second["claim_code"] != first["claim_code"]
    assert await db.fetchval("SELECT status FROM order_claims WHERE id = $1", uuid.UUID(first["id"])) == "expired"


async def test_1000_concurrent_claims_on_100_paid_orders_make_exactly_100(api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens, stock=1000)
    customers = [tokens.header("customer", sub=uuid.uuid4()) for _ in range(100)]
    orders = [await place(api, c, shop, "eth", "tUSDC") for c in customers]
    for order in orders:
        await pay_directly(db, order)
    await engine()
    attempts = [(customers[i % 100], orders[i % 100]["id"]) for i in range(1000)]
    results = await asyncio.gather(*(_claim(api, h, oid) for h, oid in attempts))
    statuses = [s for s, _ in results]
    assert statuses.count(201) == 100 and statuses.count(409) == 900, set(statuses)
    assert await db.fetchval("SELECT count(*) FROM order_claims WHERE shop_id = $1", uuid.UUID(shop.id)) == 100
    codes = {b["claim_code"] for s, b in results if s == 201}
    assert len(codes) == 100
