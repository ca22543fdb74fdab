"""Products are listed once and put on many shops' menus. The attacker manages another shop: they made
a product another shop sells (or a product of another shop's own), and rename or deactivate it on that
shop's menu."""

from __future__ import annotations

import uuid

from tests.conftest import Tokens
from tests.integration.helpers import make_shop, put_on_menu

pytest_plugins = ["tests.integration.engine_support"]


async def _menu_names(api, shop_id: str) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    menu = await (await api.get(f"/v1/shops/{shop_id}/menu")).json()
    return [(i["name"], i["available"]) for i in menu["items"]]


async def test_a_product_on_another_shops_menu_is_not_its_creators_to_rename(api, tokens: Tokens) -> None:
    """Shop B sells a product that shop A's merchant created: A's merchant may no longer rename,
    deactivate or delete it, since that would change B's menu; an operator still may."""
    a, b = await make_shop(api, tokens), await make_shop(api, tokens)
    merchant_a = tokens.header("merchant", uuid.UUID(a["id"]), sub=uuid.uuid4())
    resp = await api.post("/v1/products", json={"name": "Flat white", "category": "coffee", "base_price": "3.00"},
                          headers=merchant_a)
    assert resp.status == 201, await resp.text()
    product = await resp.json()
    await put_on_menu(api, tokens, b["id"], product["id"], "3.20")  # B's menu carries it
    for change in ({"name": "Closed: go to shop A"}, {"status": "inactive"}):
        resp = await api.patch(f"/v1/products/{product['id']}", json=change, headers=merchant_a)
        assert resp.status == 403, (change, await resp.text())
    assert (await api.delete(f"/v1/products/{product['id']}", headers=merchant_a)).status == 403
    assert await _menu_names(api, b["id"]) == [("Flat white", True)]
    ok = await api.patch(f"/v1/products/{product['id']}", json={"description": "double ristretto"},
                         headers=tokens.operator)
    assert ok.status == 200


async def test_a_shops_own_product_is_changed_by_its_managers_and_stays_off_other_menus(api, tokens: Tokens) -> None:
    """A product made for shop A belongs to A: A's managers change it (whoever of them made it), another
    shop's merchant can neither change it nor put it on their menu."""
    a, b = await make_shop(api, tokens), await make_shop(api, tokens)
    maker = tokens.header("merchant", uuid.UUID(a["id"]), sub=uuid.uuid4())
    colleague = tokens.header("merchant", uuid.UUID(a["id"]), sub=uuid.uuid4())
    merchant_b = tokens.header("merchant", uuid.UUID(b["id"]), sub=uuid.uuid4())
    resp = await api.post("/v1/products", json={"name": "House blend", "category": "coffee", "base_price": "2.50",
                                                "shop_id": b["id"]}, headers=maker)
    assert resp.status == 403, await resp.text()  # not a shop of theirs
    resp = await api.post("/v1/products", json={"name": "House blend", "category": "coffee", "base_price": "2.50",
                                                "shop_id": a["id"]}, headers=maker)
    assert resp.status == 201, await resp.text()
    product = await resp.json()
    assert product["shop_id"] == a["id"]
    resp = await api.put(f"/v1/shops/{b['id']}/products/{product['id']}", json={"price": "1.00"},
                         headers=merchant_b)
    assert resp.status == 403, await resp.text()
    resp = await api.put(f"/v1/shops/{b['id']}/products/{product['id']}", json={"price": "1.00"},
                         headers=tokens.operator)
    assert resp.status == 403, await resp.text()  # not even an operator puts A's product on B's menu
    resp = await api.put(f"/v1/shops/{a['id']}/products/{product['id']}", json={"price": "2.60"}, headers=maker)
    assert resp.status == 201, await resp.text()
    assert (await api.patch(f"/v1/products/{product['id']}", json={"name": "Mine now"},
                            headers=merchant_b)).status == 403
    resp = await api.patch(f"/v1/products/{product['id']}", json={"name": "House blend no. 2"}, headers=colleague)
    assert resp.status == 200, await resp.text()
    assert await _menu_names(api, a["id"]) == [("House blend no. 2", True)]
