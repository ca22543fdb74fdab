"""Never oversold: 200 customers order at once from 50 units of stock."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop

pytest_plugins = ["tests.integration.engine_support"]


async def test_200_concurrent_orders_for_50_units_exactly_50_succeed(api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens, stock=50)
    body = {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "customizations": {"size": ["small"]}}],
            "payment": {"chain": "eth", "asset": "tUSDC"}}

    async def order() -> int:
        headers: dict[str, Any] = {**tokens.header("customer", sub=uuid.uuid4()), "Idempotency-Key": uuid.uuid4().hex}
        resp = await api.post("/v1/orders", json=body, headers=headers)
        await resp.read()
        return int(resp.status)

    statuses = await asyncio.gather(*(order() for _ in range(200)))
    assert statuses.count(201) == 50 and statuses.count(409) == 150, sorted(set(statuses))
    supply = await db.fetchrow("SELECT quantity, reserved FROM coffee_supplies WHERE id = $1",
                               uuid.UUID(shop.supply_id))
    assert (supply["quantity"], supply["reserved"]) == (50, 50)
    assert await db.fetchval("SELECT count(*) FROM coffee_orders WHERE shop_id = $1", uuid.UUID(shop.id)) == 50
    held = await db.fetchval(
        "SELECT sum(r.quantity) FROM order_reservations r JOIN coffee_supplies s ON s.id = r.supply_id "
        "WHERE s.id = $1 AND r.status = 'reserved'", uuid.UUID(shop.supply_id))
    assert held == 50
