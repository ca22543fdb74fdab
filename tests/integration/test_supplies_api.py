import uuid

from tests.integration.helpers import make_product, make_shop


async def _supply(client, tokens, shop, product, quantity=12, reorder=10):  # type: ignore[no-untyped-def]
    resp = await client.post("/v1/supplies", headers=tokens.header("staff", uuid.UUID(shop["id"])), json={
        "shop_id": shop["id"], "product_id": product["id"], "quantity": quantity, "unit": "cups",
        "reorder_level": reorder})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_supply_crud_restock_and_low_stock_alert(client, tokens, db) -> None:
    shop, product = await make_shop(client, tokens), await make_product(client, tokens)
    staff = tokens.header("staff", uuid.UUID(shop["id"]))
    supply = await _supply(client, tokens, shop, product)
    assert supply["status"] == "in_stock"
    listed = await (await client.get(f"/v1/shops/{shop['id']}/supplies", headers=staff)).json()
    assert [s["id"] for s in listed] == [supply["id"]]

    low = await client.patch(f"/v1/supplies/{supply['id']}", json={"quantity": 9}, headers=staff)
    assert (await low.json())["status"] == "low_stock"
    lower = await client.patch(f"/v1/supplies/{supply['id']}", json={"quantity": 5}, headers=staff)
    assert (await lower.json())["quantity"] == 5
    restocked = await (await client.post(f"/v1/supplies/{supply['id']}/restock", json={"quantity": 20},
                                         headers=staff)).json()
    assert restocked["quantity"] == 25 and restocked["status"] == "in_stock" and restocked["last_restocked"]
    # the list was cached before the writes; it must show the new quantity
    listed = await (await client.get(f"/v1/shops/{shop['id']}/supplies", headers=staff)).json()
    assert listed[0]["quantity"] == 25

    events = [r["event_type"] for r in await db.fetch(
        "SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", supply["id"])]
    assert events == ["supply.created", "supply.updated", "supply.low_stock_alert", "supply.updated",
                      "supply.restocked"]


async def test_supply_access_and_errors(client, tokens) -> None:
    shop, other, product = await make_shop(client, tokens), await make_shop(client, tokens), await make_product(
        client, tokens)
    supply = await _supply(client, tokens, shop, product)
    other_staff = tokens.header("staff", uuid.UUID(other["id"]))
    assert (await client.get(f"/v1/supplies/{supply['id']}", headers=other_staff)).status == 403
    assert (await client.get(f"/v1/supplies/{supply['id']}")).status == 401
    assert (await client.post(f"/v1/supplies/{supply['id']}/restock", json={"quantity": 0},
                              headers=tokens.operator)).status == 422
    over = await client.post(f"/v1/supplies/{supply['id']}/restock", json={"quantity": 1_000_000_000},
                             headers=tokens.operator)
    assert over.status == 409
    dup = await client.post("/v1/supplies", headers=tokens.operator, json={
        "shop_id": shop["id"], "product_id": product["id"], "quantity": 1, "unit": "cups"})
    assert dup.status == 409
    ghost = await client.post("/v1/supplies", headers=tokens.operator, json={
        "shop_id": shop["id"], "product_id": str(uuid.uuid4()), "quantity": 1, "unit": "cups"})
    assert ghost.status == 404
    staff = tokens.header("staff", uuid.UUID(shop["id"]))
    assert (await client.delete(f"/v1/supplies/{supply['id']}", headers=staff)).status == 403
    assert (await client.delete(f"/v1/supplies/{supply['id']}", headers=tokens.operator)).status == 204
    assert (await client.get(f"/v1/supplies/{supply['id']}", headers=tokens.operator)).status == 404
