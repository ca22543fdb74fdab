import uuid

from tests.integration.helpers import make_product, make_shop, put_on_menu


async def test_product_customizations_are_typed(client, tokens) -> None:
    good = await make_product(client, tokens, customizations=[
        {"name": "milk", "required": True, "options": [{"name": "whole"}, {"name": "oat", "price_delta": "0.50"}]}])
    assert good["customizations"][0]["options"] == [{"name": "whole", "price_delta": "0.00"},
                                                    {"name": "oat", "price_delta": "0.50"}]
    fine = await client.post("/v1/products", headers=tokens.operator, json={
        "name": "X", "category": "coffee", "base_price": "1.00",
        "customizations": [{"name": "shot", "options": [{"name": "extra", "price_delta": "0.333"}]}]})
    assert fine.status == 422
    assert (await fine.json())["error"]["fields"][0]["field"] == "$.customizations[0].options[0].price_delta"
    for weird in ("Infinity", "NaN", "1e400"):
        resp = await client.post("/v1/products", headers=tokens.operator, json={
            "name": "X", "category": "coffee", "base_price": weird})
        assert resp.status == 422, weird
        resp = await client.post("/v1/products", headers=tokens.operator, json={
            "name": "X", "category": "coffee", "base_price": "1.00",
            "customizations": [{"name": "s", "options": [{"name": "x", "price_delta": weird}]}]})
        assert resp.status == 422, weird
    bad = await client.post("/v1/products", headers=tokens.operator, json={
        "name": "X", "category": "coffee", "base_price": "1.00",
        "customizations": [{"name": "milk", "options": []}, {"name": "size", "options": [{"price_delta": "1"}]}]})
    assert bad.status == 422
    fields = {f["field"] for f in (await bad.json())["error"]["fields"]}
    assert fields == {"$.customizations[0].options"}  # msgspec reports the first error inside a field
    dup = await client.post("/v1/products", headers=tokens.operator, json={
        "name": "X", "category": "coffee", "base_price": "1.00",
        "customizations": [{"name": "milk", "options": [{"name": "oat"}, {"name": "oat"}]}]})
    assert dup.status == 422


async def test_price_must_fit_currency_minor_units(client, tokens) -> None:
    resp = await client.post("/v1/products", headers=tokens.operator,
                             json={"name": "X", "category": "coffee", "base_price": "1.005"})
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"][0]["field"] == "$.base_price"


async def test_filter_by_category_and_search_by_name(client, tokens) -> None:
    tag = uuid.uuid4().hex[:8]
    tea = await make_product(client, tokens, name=f"Chai {tag}", category=f"tea-{tag}")
    await make_product(client, tokens, name=f"Mocha {tag}", category=f"coffee-{tag}")
    by_cat = await (await client.get(f"/v1/products?category=tea-{tag}")).json()
    assert [p["id"] for p in by_cat["items"]] == [tea["id"]]
    by_name = await (await client.get(f"/v1/products?q=MOCHA%20{tag}")).json()
    assert [p["name"] for p in by_name["items"]] == [f"Mocha {tag}"]
    wildcard = await (await client.get(f"/v1/products?q=%25{tag}")).json()
    assert wildcard["items"] == []  # a literal %, not a wildcard


async def test_merchant_edits_only_own_products(client, tokens) -> None:
    shop = uuid.uuid4()
    me, other = uuid.uuid4(), uuid.uuid4()
    resp = await client.post("/v1/products", headers=tokens.header("merchant", shop, sub=me),
                             json={"name": "Mine", "category": "coffee", "base_price": "2.00"})
    assert resp.status == 201
    pid = (await resp.json())["id"]
    assert (await client.patch(f"/v1/products/{pid}", json={"base_price": "2.10"},
                               headers=tokens.header("merchant", shop, sub=other))).status == 403
    ok = await client.patch(f"/v1/products/{pid}", json={"base_price": "2.10"},
                            headers=tokens.header("merchant", shop, sub=me))
    assert ok.status == 200
    assert (await client.post("/v1/products", headers=tokens.header("customer"),
                              json={"name": "Y", "category": "c", "base_price": "1"})).status == 403


async def test_price_change_emits_event(client, tokens, db) -> None:
    p = await make_product(client, tokens)
    await client.patch(f"/v1/products/{p['id']}", json={"base_price": "5.25"}, headers=tokens.operator)
    rows = await db.fetch("SELECT event_type, payload FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", p["id"])
    assert [r["event_type"] for r in rows] == ["product.created", "product.updated", "product.price_changed"]
    assert '"new_price": "5.25"' in rows[2]["payload"] and '"old_price": "4.00"' in rows[2]["payload"]


async def test_duplicate_menu_entry_is_409_and_put_upserts(client, tokens) -> None:
    shop, product = await make_shop(client, tokens), await make_product(client, tokens)
    url = f"/v1/shops/{shop['id']}/products"
    first = await client.post(url, json={"product_id": product["id"], "price": "3.00"}, headers=tokens.operator)
    assert first.status == 201
    dup = await client.post(url, json={"product_id": product["id"], "price": "3.50"}, headers=tokens.operator)
    assert dup.status == 409
    assert (await dup.json())["error"]["detail"]["constraint"] == "shop_products_shop_product_uq"
    put = await client.put(f"{url}/{product['id']}", json={"price": "3.50", "available": False},
                           headers=tokens.operator)
    assert put.status == 200
    assert (await put.json())["price"] == "3.50"


async def test_menu_write_is_visible_on_next_read(client, tokens, settings) -> None:
    import redis.asyncio as aioredis

    shop, product = await make_shop(client, tokens), await make_product(client, tokens)
    await put_on_menu(client, tokens, shop["id"], product["id"], "4.00")
    first = await (await client.get(f"/v1/shops/{shop['id']}/menu")).json()
    assert first["items"][0]["price"] == "4.00"
    r = aioredis.Redis.from_url(settings.redis_dsn)
    assert await r.exists(f"shop:{shop['id']}:menu") == 1
    ttl = await r.ttl(f"shop:{shop['id']}:menu")
    assert 2 * 3600 - 60 < ttl <= 2 * 3600
    await put_on_menu(client, tokens, shop["id"], product["id"], "4.40")
    assert (await (await client.get(f"/v1/shops/{shop['id']}/menu")).json())["items"][0]["price"] == "4.40"
    # a product rename reaches every menu that carries it
    await client.patch(f"/v1/products/{product['id']}", json={"name": "Renamed"}, headers=tokens.operator)
    assert (await (await client.get(f"/v1/shops/{shop['id']}/menu")).json())["items"][0]["name"] == "Renamed"
    await r.aclose()


async def test_menu_scoped_to_merchant(client, tokens) -> None:
    a, b = await make_shop(client, tokens), await make_shop(client, tokens)
    product = await make_product(client, tokens)
    merchant_a = tokens.header("merchant", uuid.UUID(a["id"]))
    ok = await client.put(f"/v1/shops/{a['id']}/products/{product['id']}", json={"price": "1.00"}, headers=merchant_a)
    assert ok.status == 201
    denied = await client.put(f"/v1/shops/{b['id']}/products/{product['id']}", json={"price": "1.00"},
                              headers=merchant_a)
    assert denied.status == 403
    missing = await client.put(f"/v1/shops/{a['id']}/products/{uuid.uuid4()}", json={"price": "1.00"},
                               headers=merchant_a)
    assert missing.status == 404


async def test_write_in_one_api_process_is_seen_by_another(settings, tokens, aiohttp_client) -> None:
    """Each API process keeps a near cache; invalidations reach the others over Redis pub/sub."""
    import asyncio

    from beanpay.api.app import init_app

    a, b = await aiohttp_client(init_app(settings)), await aiohttp_client(init_app(settings))
    shop, product = await make_shop(a, tokens), await make_product(a, tokens)
    await put_on_menu(a, tokens, shop["id"], product["id"], "2.00")
    await asyncio.sleep(0.3)  # let both subscriptions come up so their near caches are in use
    for _ in range(2):
        assert (await (await b.get(f"/v1/shops/{shop['id']}/menu")).json())["items"][0]["price"] == "2.00"
    await put_on_menu(a, tokens, shop["id"], product["id"], "2.20")
    seen = None
    for _ in range(20):  # the message is asynchronous: allow it a moment, but it must arrive
        seen = (await (await b.get(f"/v1/shops/{shop['id']}/menu")).json())["items"][0]["price"]
        if seen == "2.20":
            break
        await asyncio.sleep(0.05)
    assert seen == "2.20"
    upper = await b.get(f"/v1/shops/{shop['id'].upper()}/menu")
    assert (await upper.json())["items"][0]["price"] == "2.20"
