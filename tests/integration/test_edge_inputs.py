"""Well-typed input at the edges PostgreSQL cannot store is a 422 naming the field, never a 500:
times at the calendar's edge (in cursors and in bodies), amounts past NUMERIC(12,2), ids past BIGINT."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import msgspec
import pytest

from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop, place
from tests.integration.helpers import make_product, make_shop, put_on_menu

pytest_plugins = ["tests.integration.engine_support"]

EDGES = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"]  # both leave years 1..9999 in UTC


def cursor(created: str) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode([created, str(uuid.uuid4())])).decode().rstrip("=")


async def _field(resp: Any) -> str:
    assert resp.status == 422, await resp.text()
    return str((await resp.json())["error"]["fields"][0]["field"])


@pytest.mark.parametrize("edge", EDGES)
async def test_cursors_at_the_calendars_edge_on_every_paged_list(api, tokens: Tokens, edge: str) -> None:
    shop = await make_coffee_shop(api, tokens)
    hook = await (await api.post(f"/v1/shops/{shop.id}/webhooks", headers=shop.merchant,
                                 json={"url": "http://127.0.0.1:9/h", "event_types": ["*"]})).json()
    for path, headers in [("/v1/shops", {}), ("/v1/products", {}), ("/v1/orders", tokens.operator),
                          (f"/v1/shops/{shop.id}/webhooks/{hook['id']}/deliveries", shop.merchant)]:
        resp = await api.get(path, params={"cursor": cursor(edge)}, headers=headers)
        assert await _field(resp) == "query.cursor", path


@pytest.mark.parametrize("edge", EDGES)
async def test_pickup_times_at_the_calendars_edge(api, tokens: Tokens, edge: str) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    body = {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "customizations": {"size": ["small"]}}],
            "payment": {"chain": "eth", "asset": "tUSDC"}, "pickup_time": edge}
    assert await _field(await api.post("/v1/orders", json=body, headers=customer)) == "$.pickup_time"
    order = await place(api, customer, shop, "eth", "tUSDC")
    patched = await api.patch(f"/v1/orders/{order['id']}", json={"pickup_time": edge}, headers=customer)
    assert await _field(patched) == "$.pickup_time"


async def test_order_lines_and_totals_past_numeric_12_2(api, tokens: Tokens) -> None:
    shop = await make_shop(api, tokens)
    dear = await make_product(api, tokens, base_price="9999999999.00", customizations=[
        {"name": "gold", "options": [{"name": "leaf", "price_delta": "9999999999.00"}]}])
    await put_on_menu(api, tokens, shop["id"], dear["id"], price="9999999999.00")
    customer = tokens.header("customer", sub=uuid.uuid4())

    async def order(*items: dict[str, Any]) -> str:
        return await _field(await api.post("/v1/orders", headers=customer, json={
            "shop_id": shop["id"], "items": list(items), "payment": {"chain": "eth", "asset": "tUSDC"}}))

    assert await order({"product_id": dear["id"], "quantity": 2}) == "items[0].quantity"
    assert await order({"product_id": dear["id"], "customizations": {"gold": ["leaf"]}}) == "items[0].customizations"
    assert await order({"product_id": dear["id"]}, {"product_id": dear["id"]}) == "items"


async def test_a_ledger_cursor_past_bigint(api, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    resp = await api.get(f"/v1/shops/{shop.id}/ledger", params={"before": str(2**63)}, headers=shop.merchant)
    assert await _field(resp) == "query.before"
    ok = await api.get(f"/v1/shops/{shop.id}/ledger", params={"before": str(2**63 - 1)}, headers=shop.merchant)
    assert ok.status == 200
