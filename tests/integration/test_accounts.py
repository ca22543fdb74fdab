"""Accounts on the real stack: logins and sessions (cookie, CSRF, throttling, TOTP, password change),
invitations and roles, API keys, guests' checkout tokens, and the tenancy holes found from outside."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import msgspec
import pyotp
import pytest

from beanpay.config import Settings
from tests import secrets_watch
from tests.conftest import Tokens
from tests.harness.accounts import PASSWORD, Person, address, make_app, new_account
from tests.integration.engine_support import make_coffee_shop
from tests.integration.helpers import make_product, make_shop, put_on_menu

pytest_plugins = ["tests.integration.engine_support"]


@pytest.fixture
async def app(settings: Settings, aiohttp_client):  # type: ignore[no-untyped-def]
    return await make_app(settings, aiohttp_client)


async def new_user(app: Any, tokens: Tokens, *, operator: bool = False) -> str:
    email, _ = await new_account(app, tokens, operator=operator)
    return email


async def owner_of_new_shop(app: Any, tokens: Tokens, db: Any) -> tuple[Person, str, str]:
    """A signed-in owner of a fresh shop: (their browser, email, shop id)."""
    shop = await make_shop(app, tokens)
    email = await new_user(app, tokens)
    user_id = await db.fetchval("SELECT id FROM users WHERE email = $1", email)
    await db.execute("INSERT INTO shop_grants (user_id, shop_id, role) VALUES ($1, $2, 'owner')", user_id,
                     uuid.UUID(shop["id"]))
    person = Person(app, address())
    assert (await person.login(email)).status == 200
    return person, email, shop["id"]


async def test_login_session_csrf_and_logout(app: Any, tokens: Tokens, db: Any) -> None:
    owner, email, shop_id = await owner_of_new_shop(app, tokens, db)
    assert owner.me["user"]["email"] == email and owner.me["grants"] == [{"shop_id": shop_id, "role": "owner"}]
    stored = await db.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    digest = await db.fetchval("SELECT id_digest FROM user_sessions WHERE public_id = $1",
                               uuid.UUID(owner.me["session_id"]))
    assert digest != owner.session.encode() and len(digest) == 32  # only the digest is kept

    me = await owner.call("GET", "/v1/auth/me", csrf=False)
    assert me.status == 200 and (await me.json())["csrf_token"] == owner.csrf
    patch = {"phone": "+1 555 0100"}
    refused = await owner.call("PATCH", f"/v1/shops/{shop_id}", json=patch, csrf=False)
    assert refused.status == 403 and "X-CSRF-Token" in (await refused.json())["error"]["message"]
    forged = await owner.call("PATCH", f"/v1/shops/{shop_id}", json=patch, headers={"X-CSRF-Token": "0" * 64},
                              csrf=False)
    assert forged.status == 403
    done = await owner.call("PATCH", f"/v1/shops/{shop_id}", json=patch)
    assert done.status == 200 and (await done.json())["phone"] == "+1 555 0100"

    assert (await owner.call("POST", "/v1/auth/logout")).status == 204
    after = await owner.call("GET", "/v1/auth/me")
    assert after.status == 401  # the cookie names a revoked session: anonymous


async def test_failed_logins_are_refused_per_address_and_slowed_per_account(app: Any, tokens: Tokens) -> None:
    email = await new_user(app, tokens)
    attacker = Person(app, address())
    for _ in range(5):
        assert (await attacker.login(email, "wrong password!!")).status == 401
    refused = await attacker.login(email, PASSWORD)  # even the right password, from there, for now
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1 and "RateLimit" in refused.headers
    assert (await refused.json())["error"]["code"] == "rate_limited"
    # the account is not locked (anyone could lock its owner out): its owner signs in from elsewhere, and
    # further guesses at it are slowed, not refused (tests/adversarial/test_accounts_signin.py)
    elsewhere = Person(app, address())
    assert (await elsewhere.login(email, PASSWORD)).status == 200
    # another account from a fresh address is not affected
    other = await new_user(app, tokens)
    assert (await Person(app, address()).login(other)).status == 200
    # an unknown email answers like a wrong password (no account enumeration)
    unknown = await Person(app, address()).login("nobody@example.com", "wrong password!!")
    assert unknown.status == 401 and (await unknown.json())["error"]["message"] == "wrong email or password"


async def test_totp_second_factor(app: Any, tokens: Tokens) -> None:
    email = await new_user(app, tokens)
    person = Person(app, address())
    assert (await person.login(email)).status == 200
    setup = await (await person.call("POST", "/v1/auth/totp/setup")).json()
    totp = pyotp.TOTP(setup["secret"])
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    wrong = await person.call("POST", "/v1/auth/totp/enable",
                              json={"secret": setup["secret"], "code": "000000" if totp.now() != "000000" else "111111",
                                    "password": PASSWORD})
    assert wrong.status == 422 and (await wrong.json())["error"]["fields"][0]["field"] == "code"
    setup_code = totp.now()
    on = await person.call("POST", "/v1/auth/totp/enable",
                           json={"secret": setup["secret"], "code": setup_code, "password": PASSWORD})
    assert on.status == 204

    again = Person(app, address())
    needs = await again.login(email)
    assert needs.status == 401 and (await needs.json())["error"]["code"] == "second_factor_required"
    # the code that turned it on is spent; the next one (within the window of one step) signs in
    assert (await again.login(email, totp=setup_code)).status == 401
    assert (await again.login(email, totp=totp.at(int(time.time()) + 30))).status == 200
    assert again.me["user"]["totp"] is True


async def test_password_change_ends_other_sessions(app: Any, tokens: Tokens) -> None:
    email = await new_user(app, tokens)
    laptop, phone = Person(app, address()), Person(app, address())
    assert (await laptop.login(email)).status == 200 and (await phone.login(email)).status == 200
    sessions = await (await laptop.call("GET", "/v1/auth/sessions")).json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    short = await laptop.call("POST", "/v1/auth/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert short.status == 422 and (await short.json())["error"]["fields"][0]["field"] == "new_password"
    bad = await laptop.call("POST", "/v1/auth/password",
                            json={"current_password": "not it at all", "new_password": "a much longer one"})
    assert bad.status == 422 and (await bad.json())["error"]["fields"][0]["field"] == "current_password"
    ok = await laptop.call("POST", "/v1/auth/password",
                           json={"current_password": PASSWORD, "new_password": "a much longer one"})
    assert ok.status == 204
    assert (await laptop.call("GET", "/v1/auth/me")).status == 200
    assert (await phone.call("GET", "/v1/auth/me")).status == 401
    assert (await Person(app, address()).login(email)).status == 401
    assert (await Person(app, address()).login(email, "a much longer one")).status == 200


async def test_sessions_are_listed_and_revocable(app: Any, tokens: Tokens) -> None:
    email = await new_user(app, tokens)
    laptop, phone = Person(app, address()), Person(app, address())
    await laptop.login(email)
    await phone.login(email)
    revoked = await laptop.call("DELETE", f"/v1/auth/sessions/{phone.me['session_id']}")
    assert revoked.status == 204
    assert (await phone.call("GET", "/v1/auth/me")).status == 401
    assert (await laptop.call("DELETE", f"/v1/auth/sessions/{phone.me['session_id']}")).status == 404
    # nobody revokes someone else's session
    stranger = Person(app, address())
    await stranger.login(await new_user(app, tokens))
    assert (await stranger.call("DELETE", f"/v1/auth/sessions/{laptop.me['session_id']}")).status == 404
    assert (await laptop.call("GET", "/v1/auth/me")).status == 200


async def test_invitations_are_single_use_and_roles_bounded(app: Any, tokens: Tokens, db: Any) -> None:
    owner, _, shop_id = await owner_of_new_shop(app, tokens, db)
    manager_email = f"{uuid.uuid4().hex[:8]}@example.com"
    made = await owner.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": manager_email,
                                                                             "role": "manager"})
    assert made.status == 201
    invitation = await made.json()
    secrets_watch.watch(invitation["token"])
    assert invitation["link"] == f"/invitations/{invitation['token']}"
    accepted = await app.post("/v1/invitations/accept", json={"token": invitation["token"], "password": PASSWORD})
    assert accepted.status == 200 and (await accepted.json())["created_account"] is True
    again = await app.post("/v1/invitations/accept", json={"token": invitation["token"], "password": PASSWORD})
    assert again.status == 410 and "used" in (await again.json())["error"]["message"]

    manager = Person(app, address())
    assert (await manager.login(manager_email)).status == 200
    assert manager.me["grants"] == [{"shop_id": shop_id, "role": "manager"}]
    # a manager invites staff, never owners or managers
    up = await manager.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": "x@example.com",
                                                                             "role": "owner"})
    assert up.status == 403
    staff = await manager.call("POST", f"/v1/shops/{shop_id}/invitations", json={"email": "s@example.com",
                                                                                "role": "staff"})
    assert staff.status == 201
    # an expired invitation is refused with 410
    token = (await staff.json())["token"]
    await db.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = 's@example.com'")
    late = await app.post("/v1/invitations/accept", json={"token": token, "password": PASSWORD})
    assert late.status == 410 and "expired" in (await late.json())["error"]["message"]
    unknown = await app.post("/v1/invitations/accept", json={"token": "x" * 43, "password": PASSWORD})
    assert unknown.status == 404

    members = await (await owner.call("GET", f"/v1/shops/{shop_id}/members")).json()
    assert sorted(m["role"] for m in members) == ["manager", "owner"]
    # the last owner cannot be removed or demoted
    owner_id = owner.me["user"]["id"]
    assert (await owner.call("DELETE", f"/v1/shops/{shop_id}/members/{owner_id}")).status == 409
    assert (await owner.call("PUT", f"/v1/shops/{shop_id}/members/{owner_id}", json={"role": "staff"})).status == 409


async def test_removing_a_member_takes_effect_at_once(app: Any, tokens: Tokens, db: Any) -> None:
    owner, _, shop_id = await owner_of_new_shop(app, tokens, db)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    invitation = await (await owner.call("POST", f"/v1/shops/{shop_id}/invitations",
                                         json={"email": email, "role": "staff"})).json()
    await app.post("/v1/invitations/accept", json={"token": invitation["token"], "password": PASSWORD})
    staff = Person(app, address())
    await staff.login(email)
    assert (await staff.call("GET", f"/v1/shops/{shop_id}/supplies")).status == 200
    user_id = staff.me["user"]["id"]
    assert (await owner.call("DELETE", f"/v1/shops/{shop_id}/members/{user_id}")).status == 204
    assert (await staff.call("GET", f"/v1/shops/{shop_id}/supplies")).status == 403


async def test_api_keys(app: Any, tokens: Tokens, db: Any) -> None:
    owner, _, shop_id = await owner_of_new_shop(app, tokens, db)
    other_shop = (await make_shop(app, tokens))["id"]
    body = {"name": "till", "permissions": ["orders:read", "supplies:read"], "shop_ids": [shop_id]}
    made = await owner.call("POST", "/v1/api-keys", json=body)
    assert made.status == 201, await made.text()
    created = await made.json()
    key = created["key"]
    secrets_watch.watch(key)
    assert key.startswith("bp_") and len(key) >= 3 + 43 and created["prefix"] == key[:10]
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE key_digest = sha256($1::bytea)", key.encode()) == 1
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE prefix = $1 AND name = 'till'", key[:10]) == 1
    bearer = {"Authorization": f"Bearer {key}"}
    assert (await app.get(f"/v1/shops/{shop_id}/supplies", headers=bearer)).status == 200
    assert (await app.get(f"/v1/shops/{other_shop}/supplies", headers=bearer)).status == 403  # scope
    assert (await app.patch(f"/v1/shops/{shop_id}", json={"phone": "+1 555 0101"}, headers=bearer)).status == 403
    listed = await (await owner.call("GET", "/v1/api-keys")).json()
    assert [k["name"] for k in listed] == ["till"] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None

    # what a key may not hold, and what its maker does not hold
    for bad, field in (({**body, "permissions": ["members:manage"]}, "permissions"),
                       ({**body, "permissions": ["orders:fly"]}, "permissions"),
                       ({**body, "shop_ids": [other_shop]}, "shop_ids")):
        refused = await owner.call("POST", "/v1/api-keys", json=bad)
        assert refused.status == 422 and (await refused.json())["error"]["fields"][0]["field"] == field

    assert (await owner.call("DELETE", f"/v1/api-keys/{created['id']}")).status == 204
    revoked = await app.get(f"/v1/shops/{shop_id}/supplies", headers=bearer)
    assert revoked.status == 401
    assert (await app.get("/v1/shops", headers={"Authorization": "Bearer bp_" + "x" * 43})).status == 401


async def test_expired_api_key_is_refused(app: Any, tokens: Tokens, db: Any) -> None:
    owner, _, shop_id = await owner_of_new_shop(app, tokens, db)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    refused = await owner.call("POST", "/v1/api-keys", json={"name": "old", "permissions": ["orders:read"],
                                                             "shop_ids": [shop_id], "expires_at": past})
    assert refused.status == 422 and (await refused.json())["error"]["fields"][0]["field"] == "expires_at"
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    key = (await (await owner.call("POST", "/v1/api-keys", json={
        "name": "soon", "permissions": ["orders:read"], "shop_ids": [shop_id], "expires_at": soon})).json())["key"]
    await db.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE name = 'soon'")
    assert (await app.get(f"/v1/orders?shop_id={shop_id}", headers={"Authorization": f"Bearer {key}"})).status == 401


async def test_guest_orders_carry_a_checkout_token(api: Any, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    body = {"shop_id": shop.id, "order_type": "pickup", "payment": {"chain": "eth", "asset": "ETH"},
            "items": [{"product_id": shop.product_id, "quantity": 1, "customizations": {"size": ["small"]}}]}
    placed = await api.post("/v1/orders", json=body)
    assert placed.status == 201
    order = await placed.json()
    token = order["checkout_token"]
    assert (await api.get(f"/v1/orders/{order['id']}")).status == 401
    seen = await api.get(f"/v1/orders/{order['id']}", headers={"X-Checkout-Token": token})
    assert seen.status == 200 and (await seen.json())["id"] == order["id"]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert (await api.get(f"/v1/orders/{order['id']}", headers={"X-Checkout-Token": tampered})).status == 401
    other = await (await api.post("/v1/orders", json=body)).json()
    # one order's token opens that order only
    assert (await api.get(f"/v1/orders/{other['id']}", headers={"X-Checkout-Token": token})).status == 401


async def test_guest_orders_are_rate_limited(make_api: Any, tokens: Tokens) -> None:
    api = await make_api(rate_limits=True, rate_limit_public_orders=3, trusted_proxies=["127.0.0.1/32"])
    shop = await make_coffee_shop(api, tokens)
    body = {"shop_id": shop.id, "order_type": "pickup", "payment": {"chain": "eth", "asset": "ETH"},
            "items": [{"product_id": shop.product_id, "quantity": 1, "customizations": {"size": ["small"]}}]}
    guest = {"X-Forwarded-For": address()}
    answers = [await api.post("/v1/orders", json=body, headers=guest) for _ in range(4)]
    assert [a.status for a in answers] == [201, 201, 201, 429]
    assert answers[3].headers["RateLimit-Policy"] == '"guest-orders";q=3;w=60'
    assert answers[3].headers["RateLimit"].startswith('"guest-orders";r=0;t=')
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert (await answers[3].json())["error"]["code"] == "rate_limited"
    # another address, and a signed-in customer, have budgets of their own
    assert (await api.post("/v1/orders", json=body, headers={"X-Forwarded-For": address()})).status == 201
    assert (await api.post("/v1/orders", json=body, headers={**guest, **tokens.header("customer")})).status == 201


async def test_a_merchant_cannot_change_what_another_shop_charges(api: Any, tokens: Tokens) -> None:
    """The exact case found from outside: shop A's merchant made an option delta of its product -3.99,
    and an order at shop B, which lists that product at 4.00, came to 0.01."""
    shop_a, shop_b = await make_shop(api, tokens), await make_shop(api, tokens)
    merchant_a, merchant_b = tokens.header("merchant", uuid.UUID(shop_a["id"])), tokens.header(
        "merchant", uuid.UUID(shop_b["id"]))
    product = await make_product(api, tokens, headers=merchant_a, customizations=[
        {"name": "size", "required": True, "options": [{"name": "small", "price_delta": "0.00"}]}])
    await put_on_menu(api, tokens, shop_b["id"], product["id"], price="4.00")
    changed = await api.patch(f"/v1/products/{product['id']}", headers=merchant_a, json={"customizations": [
        {"name": "size", "required": True, "options": [{"name": "small", "price_delta": "-3.99"}]}]})
    assert changed.status == 200
    menu = await (await api.get(f"/v1/shops/{shop_b['id']}/menu")).json()
    assert menu["items"][0]["customizations"][0]["options"][0]["price_delta"] == "0.00"
    order = await api.post("/v1/orders", headers=tokens.header("customer"), json={
        "shop_id": shop_b["id"], "order_type": "pickup", "payment": {"chain": "eth", "asset": "ETH"},
        "items": [{"product_id": product["id"], "quantity": 1, "customizations": {"size": ["small"]}}]})
    assert order.status == 201, await order.text()
    assert (await order.json())["total_amount"] == "4.00"
    # shop B takes the new options only when its own merchant lists the product again
    again = await api.put(f"/v1/shops/{shop_b['id']}/products/{product['id']}", headers=merchant_b,
                          json={"price": "4.00", "available": True})
    assert again.status == 200
    menu = await (await api.get(f"/v1/shops/{shop_b['id']}/menu")).json()
    assert menu["items"][0]["customizations"][0]["options"][0]["price_delta"] == "-3.99"
    # and shop A's merchant cannot list at shop B at all
    assert (await api.put(f"/v1/shops/{shop_b['id']}/products/{product['id']}", headers=merchant_a,
                          json={"price": "0.01", "available": True})).status == 403


async def test_deleted_shops_and_products_are_listed_to_operators_and_owners_only(app: Any, tokens: Tokens) -> None:
    shop = await make_shop(app, tokens)
    merchant = tokens.header("merchant", uuid.UUID(shop["id"]))
    product = await make_product(app, tokens, headers=merchant)
    assert (await app.delete(f"/v1/products/{product['id']}", headers=merchant)).status == 204
    assert (await app.delete(f"/v1/shops/{shop['id']}", headers=tokens.operator)).status == 204
    assert (await app.get("/v1/shops?status=deleted")).status == 401
    assert (await app.get("/v1/products?status=deleted")).status == 401
    assert (await app.get("/v1/shops?status=deleted", headers=tokens.header("customer"))).status == 403
    stranger = tokens.header("merchant", uuid.uuid4())
    assert shop["id"] not in [s["id"] for s in (await (await app.get(
        "/v1/shops?status=deleted&limit=100", headers=stranger)).json())["items"]]
    assert product["id"] not in [p["id"] for p in (await (await app.get(
        "/v1/products?status=deleted&limit=100", headers=stranger)).json())["items"]]
    mine = await (await app.get("/v1/shops?status=deleted&limit=100", headers=merchant)).json()
    assert [s["id"] for s in mine["items"]] == [shop["id"]]
    own = await (await app.get("/v1/products?status=deleted&limit=100", headers=merchant)).json()
    assert [p["id"] for p in own["items"]] == [product["id"]]
    everything = await (await app.get("/v1/shops?status=deleted&limit=100", headers=tokens.operator)).json()
    assert shop["id"] in [s["id"] for s in everything["items"]]


async def test_development_tokens_can_be_turned_off(settings: Settings, aiohttp_client, tokens: Tokens) -> None:  # type: ignore[no-untyped-def]
    from beanpay.api.app import init_app

    api = await aiohttp_client(init_app(msgspec.structs.replace(settings, dev_tokens=False)))
    refused = await api.get("/v1/orders", headers=tokens.header("customer"))
    assert refused.status == 401 and "development tokens" in (await refused.json())["error"]["message"]
