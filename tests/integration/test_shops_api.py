import json
import uuid

from tests.integration.helpers import make_shop


async def test_roles_on_shop_writes(client, tokens) -> None:
    body = {"name": "Roastery", "address": "2 Bean Rd"}
    assert (await client.post("/v1/shops", json=body)).status == 401
    assert (await client.post("/v1/shops", json=body, headers={"Authorization": "Bearer nope"})).status == 401
    assert (await client.post("/v1/shops", json=body, headers=tokens.header("customer"))).status == 403
    shop_a = await make_shop(client, tokens)
    assert (await client.post("/v1/shops", json=body, headers=tokens.header("merchant", uuid.UUID(shop_a["id"])))
            ).status == 403


async def test_merchant_is_scoped_to_own_shop(client, tokens) -> None:
    a, b = await make_shop(client, tokens), await make_shop(client, tokens)
    merchant_a = tokens.header("merchant", uuid.UUID(a["id"]))
    ok = await client.patch(f"/v1/shops/{a['id']}", json={"phone": "+49 30 1234"}, headers=merchant_a)
    assert ok.status == 200
    assert (await ok.json())["phone"] == "+49 30 1234"
    denied = await client.patch(f"/v1/shops/{b['id']}", json={"phone": "+49 30 9999"}, headers=merchant_a)
    assert denied.status == 403
    assert (await denied.json())["error"]["code"] == "forbidden"
    staff_a = tokens.header("staff", uuid.UUID(a["id"]))
    assert (await client.patch(f"/v1/shops/{a['id']}", json={"phone": "1234"}, headers=staff_a)).status == 403
    after_b = await (await client.get(f"/v1/shops/{b['id']}")).json()
    assert after_b["phone"] is None


async def test_public_reads_need_no_token(client, tokens) -> None:
    shop = await make_shop(client, tokens)
    resp = await client.get(f"/v1/shops/{shop['id']}")
    assert resp.status == 200
    assert (await resp.json())["name"] == shop["name"]


async def test_validation_errors_name_each_field(client, tokens) -> None:
    resp = await client.post("/v1/shops", json={"name": "", "address": "x", "email": "nope", "phone": 5},
                             headers=tokens.operator)
    assert resp.status == 422
    fields = {f["field"] for f in (await resp.json())["error"]["fields"]}
    assert fields == {"$.name", "$.email", "$.phone"}


async def test_malformed_json_is_400_and_unknown_paths_404(client, tokens) -> None:
    as_json = {**tokens.operator, "Content-Type": "application/json"}
    resp = await client.post("/v1/shops", data=b"{not json", headers=as_json)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "malformed_request"
    resp = await client.post("/v1/shops", data=b"[1, 2]", headers=as_json)
    assert resp.status == 400
    untyped = await client.post("/v1/shops", data=b'{"name": "x"}', headers=tokens.operator)
    assert untyped.status == 415 and (await untyped.json())["error"]["code"] == "unsupported_media_type"
    assert (await client.get("/v1/shops/not-a-uuid")).status == 404
    assert (await client.get(f"/v1/shops/{uuid.uuid4()}")).status == 404
    missing = await client.get("/v1/nothing-here")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


async def test_stale_update_is_409(client, tokens) -> None:
    shop = await make_shop(client, tokens)
    first = await client.patch(f"/v1/shops/{shop['id']}", json={"name": "New", "version": 1}, headers=tokens.operator)
    assert first.status == 200
    assert (await first.json())["version"] == 2
    stale = await client.patch(f"/v1/shops/{shop['id']}", json={"name": "Newer", "version": 1},
                               headers=tokens.operator)
    assert stale.status == 409
    assert (await stale.json())["error"]["detail"]["current_version"] == "2"


async def test_update_writes_audit_and_event_in_same_transaction(client, tokens, db) -> None:
    shop = await make_shop(client, tokens)
    await client.patch(f"/v1/shops/{shop['id']}", json={"status": "closed"}, headers=tokens.operator)
    audit = await db.fetch("SELECT action, before, after FROM audit_log WHERE entity_id = $1 ORDER BY id",
                           shop["id"])
    assert [r["action"] for r in audit] == ["shop.create", "shop.update"]
    assert json.loads(audit[1]["before"])["status"] == "active"
    assert json.loads(audit[1]["after"])["status"] == "closed"
    events = await db.fetch("SELECT event_type FROM event_outbox WHERE aggregate_id = $1 ORDER BY id", shop["id"])
    assert [e["event_type"] for e in events] == ["shop.created", "shop.updated", "shop.closed"]


async def test_failed_write_leaves_no_audit_or_event(client, tokens, db) -> None:
    shop = await make_shop(client, tokens)
    resp = await client.patch(f"/v1/shops/{shop['id']}", json={"latitude": 10.0}, headers=tokens.operator)
    assert resp.status == 422
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE entity_id = $1", shop["id"]) == 1
    assert await db.fetchval("SELECT count(*) FROM event_outbox WHERE aggregate_id = $1", shop["id"]) == 1


async def test_cursor_pagination_visits_each_shop_once(client, tokens) -> None:
    made = {(await make_shop(client, tokens, status="inactive"))["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/shops?status=inactive&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url)).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert made <= set(seen)
    assert len(seen) == len(set(seen))
    bad = await client.get("/v1/shops?cursor=garbage")
    assert bad.status == 422


async def test_near_search_orders_by_distance_within_radius(client, tokens) -> None:
    lat, lng = -33.8688, 151.2093  # nobody else puts shops here
    near = await make_shop(client, tokens, latitude=lat + 0.001, longitude=lng)
    mid = await make_shop(client, tokens, latitude=lat + 0.02, longitude=lng)
    await make_shop(client, tokens, latitude=lat + 1.0, longitude=lng)  # ~111 km away
    page = await (await client.get(f"/v1/shops?near={lat},{lng}&radius_km=5")).json()
    assert [s["id"] for s in page["items"]] == [near["id"], mid["id"]]
    assert 0.1 < page["items"][0]["distance_km"] < 0.2
    paged = await (await client.get(f"/v1/shops?near={lat},{lng}&radius_km=5&limit=1")).json()
    assert [s["id"] for s in paged["items"]] == [near["id"]]
    rest = await (await client.get(f"/v1/shops?near={lat},{lng}&radius_km=5&limit=1&cursor={paged['next_cursor']}"
                                   )).json()
    assert [s["id"] for s in rest["items"]] == [mid["id"]]


async def test_delete_hides_shop(client, tokens) -> None:
    shop = await make_shop(client, tokens)
    assert (await client.get(f"/v1/shops/{shop['id']}")).status == 200  # now cached
    assert (await client.delete(f"/v1/shops/{shop['id']}", headers=tokens.operator)).status == 204
    assert (await client.get(f"/v1/shops/{shop['id']}")).status == 404


async def test_idempotency_key_replays_and_guards(client, tokens) -> None:
    headers = {**tokens.operator, "Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "Once Only", "address": "9 Retry St"}
    first = await client.post("/v1/shops", json=body, headers=headers)
    second = await client.post("/v1/shops", json=body, headers=headers)
    assert first.status == second.status == 201
    assert (await first.json())["id"] == (await second.json())["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    other = await client.post("/v1/shops", json={**body, "name": "Other"}, headers=headers)
    assert other.status == 409
    assert (await other.json())["error"]["code"] == "idempotency_key_reused"


async def test_nul_characters_are_a_422_not_a_500(client, tokens) -> None:
    """Found by schemathesis: PostgreSQL text cannot hold U+0000."""
    shop = await make_shop(client, tokens)
    resp = await client.patch(f"/v1/shops/{shop['id']}", json={"name": "bad\x00name"}, headers=tokens.operator)
    assert resp.status == 422
    assert (await resp.json())["error"]["fields"] == [
        {"field": "$.name", "message": "contains a NUL (U+0000) character"}]
    resp = await client.get("/v1/products?q=a%00b")
    assert resp.status == 422


async def test_a_method_a_path_lacks_is_405_naming_every_method_it_has(client, tokens) -> None:
    shop = await make_shop(client, tokens)
    resp = await client.put(f"/v1/shops/{shop['id']}", json={})
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(",")) == {"GET", "PATCH", "DELETE"}
    assert (await resp.json())["error"]["code"]
