"""Small builders for integration tests: each call makes fresh rows through the real API."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Tokens


async def make_shop(client: Any, tokens: Tokens, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Shop {uuid.uuid4().hex[:6]}", "address": "1 Roast Lane", **fields}
    resp = await client.post("/v1/shops", json=body, headers=tokens.operator)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def make_product(client: Any, tokens: Tokens, *, headers: dict[str, str] | None = None,
                       **fields: Any) -> dict[str, Any]:
    body = {"name": f"Latte {uuid.uuid4().hex[:6]}", "category": "coffee", "base_price": "4.00", **fields}
    resp = await client.post("/v1/products", json=body, headers=headers or tokens.operator)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def put_on_menu(client: Any, tokens: Tokens, shop_id: str, product_id: str, price: str = "4.50") -> None:
    resp = await client.put(f"/v1/shops/{shop_id}/products/{product_id}", json={"price": price},
                            headers=tokens.operator)
    assert resp.status in (200, 201), await resp.text()


PASSWORD = "correct horse battery staple"


async def person_at(client: Any, tokens: Tokens, db: Any, shop_id: str, role: str, name: str) -> str:
    """An account with `role` at the shop, signing in with PASSWORD; returns its email."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    resp = await client.post("/v1/users", json={"email": email, "password": PASSWORD, "display_name": name},
                             headers=tokens.operator)
    assert resp.status == 201, await resp.text()
    user_id = await db.fetchval("SELECT id FROM users WHERE email = $1", email)
    await db.execute("INSERT INTO shop_grants (user_id, shop_id, role) VALUES ($1, $2, $3)", user_id,
                     uuid.UUID(shop_id), role)
    return email
