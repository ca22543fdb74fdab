"""Every route against every kind of principal, from a table written by hand (not derived from the
routes' own policies, so a policy that drifts from what is intended fails here).

A principal is let in when the answer is anything but 401, 403 or 404 (a 404 is how a customer is
refused another's order: it does not learn the order exists); a 409 or 422 of an admitted principal
means the request got past access and was judged on its merits. Each write runs in a world of its
own (a fresh shop with its product, stock, order, claim, webhook, invitation and keys), so what one
principal changed never decides another's answer.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyotp
import pytest

from beanpay import cachekeys
from beanpay.access import KEY_PERMISSIONS
from beanpay.api.app import all_routes
from beanpay.api.guard import Policy
from beanpay.api.state import CACHE, SETTINGS
from beanpay.engine.transfers.service import claim_token
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import make_coffee_shop, place
from tests.integration.helpers import make_shop

pytestmark = pytest.mark.late  # both cores for a minute or more: after the drills (tests/conftest.py)

pytest_plugins = ["tests.integration.engine_support"]

PASSWORD = "correct horse battery staple"
PRINCIPALS = ("anonymous", "customer", "other_customer", "staff", "staff_elsewhere", "merchant", "operator",
              "key", "key_bare", "key_elsewhere")
EVERYONE = frozenset(PRINCIPALS)
SIGNED_IN = EVERYONE - {"anonymous"}
OPS = frozenset({"operator"})
SHOP_PEOPLE = frozenset({"staff", "merchant", "operator", "key"})
MANAGERS = frozenset({"merchant", "operator", "key"})
OWNERS = frozenset({"merchant", "operator"})
ACCOUNTS = frozenset({"staff", "staff_elsewhere", "merchant", "operator"})
OWN_ORDER = frozenset({"customer", "operator"})
CUSTOMERS = frozenset({"customer", "other_customer"})
PEOPLE = CUSTOMERS | ACCOUNTS
ORDER_READERS = frozenset({"customer", "staff", "merchant", "operator", "key"})
ORDER_WRITERS = ORDER_READERS


@dataclass
class World:
    shop: str
    other_shop: str
    product: str  # on the menu, made by an operator
    merchants_product: str  # made by the merchant (its creator edits it)
    supply: str
    order: str  # placed by `customer`, unpaid
    claim_code: str
    webhook: str
    invitation: str
    invitation_token: str
    key_id: str
    refund: str = ""  # awaiting its claim, of `order`
    refund_token: str = ""
    payout: str = ""  # approved, in a batch out for signing
    batch: str = ""
    invoice: str = ""  # new: no asset picked
    cart_item: str = ""  # in `customer`'s cart at the shop
    notification: str = ""  # in `customer`'s in-app inbox
    push_subscription: str = ""  # of `customer`
    session_of: dict[str, str] = field(default_factory=dict)  # principal -> public id of a spare session of theirs
    keys: dict[str, str] = field(default_factory=dict)  # principal -> its API key (for this world's shops)


@dataclass(frozen=True)
class Case:
    method: str
    path: Callable[[World, str], str]
    allowed: frozenset[str]
    body: Callable[[World, str], Any] | None = None
    query: str = ""


def p(template: str) -> Callable[[World, str], str]:
    return lambda w, who: template.format(**vars(w), my_session=w.session_of.get(who, uuid.uuid4()))


TABLE: dict[tuple[str, str], Case] = {
    ("POST", "/v1/shops"): Case("POST", p("/v1/shops"), OPS, lambda w, _: {"name": "New", "address": "1 Lane"}),
    ("GET", "/v1/shops/{shop_id}"): Case("GET", p("/v1/shops/{shop}"), EVERYONE),
    ("GET", "/v1/shops"): Case("GET", p("/v1/shops"), EVERYONE),
    ("PATCH", "/v1/shops/{shop_id}"): Case("PATCH", p("/v1/shops/{shop}"), MANAGERS, lambda w, _: {"phone": "+1 555"}),
    ("DELETE", "/v1/shops/{shop_id}"): Case("DELETE", p("/v1/shops/{shop}"), OPS),
    ("POST", "/v1/products"): Case("POST", p("/v1/products"), MANAGERS | {"key_elsewhere"},
                                   lambda w, _: {"name": "Mocha", "category": "coffee", "base_price": "4.00"}),
    ("GET", "/v1/products/{product_id}"): Case("GET", p("/v1/products/{product}"), EVERYONE),
    ("GET", "/v1/products"): Case("GET", p("/v1/products"), EVERYONE),
    ("PATCH", "/v1/products/{product_id}"): Case("PATCH", p("/v1/products/{merchants_product}"), OWNERS,
                                                 lambda w, _: {"description": "rich"}),
    ("DELETE", "/v1/products/{product_id}"): Case("DELETE", p("/v1/products/{merchants_product}"), OWNERS),
    ("PUT", "/v1/shops/{shop_id}/products/{product_id}"): Case(
        "PUT", p("/v1/shops/{shop}/products/{product}"), MANAGERS, lambda w, _: {"price": "5.00"}),
    ("POST", "/v1/shops/{shop_id}/products"): Case(
        "POST", p("/v1/shops/{shop}/products"), MANAGERS,
        lambda w, _: {"product_id": w.merchants_product, "price": "3.00"}),
    ("DELETE", "/v1/shops/{shop_id}/products/{product_id}"): Case(
        "DELETE", p("/v1/shops/{shop}/products/{product}"), MANAGERS),
    ("GET", "/v1/shops/{shop_id}/menu"): Case("GET", p("/v1/shops/{shop}/menu"), EVERYONE),
    ("POST", "/v1/supplies"): Case("POST", p("/v1/supplies"), SHOP_PEOPLE, lambda w, _: {
        "shop_id": w.shop, "product_id": w.merchants_product, "quantity": 5, "unit": "cups"}),
    ("GET", "/v1/supplies/{supply_id}"): Case("GET", p("/v1/supplies/{supply}"), SHOP_PEOPLE),
    ("GET", "/v1/shops/{shop_id}/supplies"): Case("GET", p("/v1/shops/{shop}/supplies"), SHOP_PEOPLE),
    ("GET", "/v1/shops/{shop_id}/events"): Case("GET", p("/v1/shops/{shop}/events"), SHOP_PEOPLE),
    ("GET", "/v1/cart"): Case("GET", p("/v1/cart"), CUSTOMERS, query="?shop_id={shop}"),
    ("DELETE", "/v1/cart"): Case("DELETE", p("/v1/cart"), CUSTOMERS, query="?shop_id={shop}"),
    ("POST", "/v1/cart/items"): Case("POST", p("/v1/cart/items"), CUSTOMERS, lambda w, _: {
        "shop_id": w.shop, "product_id": w.product, "customizations": {"size": ["small"]}}),
    ("PATCH", "/v1/cart/items/{item_id}"): Case("PATCH", p("/v1/cart/items/{cart_item}"), frozenset({"customer"}),
                                                lambda w, _: {"quantity": 2}),
    ("DELETE", "/v1/cart/items/{item_id}"): Case("DELETE", p("/v1/cart/items/{cart_item}"), frozenset({"customer"})),
    # another customer's checkout gets 422 (their own cart is empty): admitted, judged on its merits
    ("POST", "/v1/cart/checkout"): Case("POST", p("/v1/cart/checkout"), CUSTOMERS, lambda w, _: {
        "shop_id": w.shop, "payment": {"chain": "eth", "asset": "ETH"}}),
    ("GET", "/v1/users/me/favorites"): Case("GET", p("/v1/users/me/favorites"), PEOPLE),
    ("GET", "/v1/notifications"): Case("GET", p("/v1/notifications"), PEOPLE),
    ("POST", "/v1/notifications/{notification_id}/read"): Case(
        "POST", p("/v1/notifications/{notification}/read"), frozenset({"customer"})),
    ("GET", "/v1/users/me/notification-preferences"): Case("GET", p("/v1/users/me/notification-preferences"),
                                                           PEOPLE),
    ("PUT", "/v1/users/me/notification-preferences"): Case("PUT", p("/v1/users/me/notification-preferences"),
                                                           PEOPLE, lambda w, _: {"language": "es"}),
    ("POST", "/v1/users/me/push-subscriptions"): Case("POST", p("/v1/users/me/push-subscriptions"), PEOPLE,
                                                      lambda w, who: {"endpoint": f"https://push.example/{who}",
                                                                      "keys": {"p256dh": "B" * 40, "auth": "a" * 16}}),
    ("POST", "/v1/orders/{order_id}/push-subscriptions"): Case(
        "POST", p("/v1/orders/{order}/push-subscriptions"), frozenset({"customer"}),
        lambda w, who: {"endpoint": f"https://push.example/order/{who}",
                        "keys": {"p256dh": "B" * 40, "auth": "a" * 16}}),
    ("DELETE", "/v1/users/me/push-subscriptions/{subscription_id}"): Case(
        "DELETE", p("/v1/users/me/push-subscriptions/{push_subscription}"), frozenset({"customer"})),
    ("GET", "/v1/push/vapid-public-key"): Case("GET", p("/v1/push/vapid-public-key"), EVERYONE),
    ("PUT", "/v1/users/me/favorites/{kind}/{target_id}"): Case("PUT", p("/v1/users/me/favorites/shop/{shop}"),
                                                               PEOPLE),
    ("DELETE", "/v1/users/me/favorites/{kind}/{target_id}"): Case(
        "DELETE", p("/v1/users/me/favorites/shop/{shop}"), PEOPLE),
    ("PATCH", "/v1/supplies/{supply_id}"): Case("PATCH", p("/v1/supplies/{supply}"), SHOP_PEOPLE,
                                                lambda w, _: {"reorder_level": 3}),
    ("POST", "/v1/supplies/{supply_id}/restock"): Case("POST", p("/v1/supplies/{supply}/restock"), SHOP_PEOPLE,
                                                       lambda w, _: {"quantity": 2}),
    ("DELETE", "/v1/supplies/{supply_id}"): Case("DELETE", p("/v1/supplies/{supply}"), MANAGERS),
    ("GET", "/v1/prices"): Case("GET", p("/v1/prices"), EVERYONE, query="?fiat=USD"),
    ("POST", "/v1/orders"): Case("POST", p("/v1/orders"),
                                 frozenset({"anonymous", "customer", "other_customer", "merchant", "operator", "key"}),
                                 lambda w, _: {"shop_id": w.shop, "payment": {"chain": "eth", "asset": "ETH"},
                                               "items": [{"product_id": w.product, "quantity": 1,
                                                          "customizations": {"size": ["small"]}}]}),
    ("POST", "/v1/invoices"): Case("POST", p("/v1/invoices"), MANAGERS | {"key_bare"}, lambda w, _: {
        "shop_id": w.shop, "amount": "3.00", "assets": [{"chain": "eth", "asset": "ETH"}]}),
    ("GET", "/v1/invoices/{invoice_id}"): Case("GET", p("/v1/invoices/{invoice}"), SHOP_PEOPLE),
    ("GET", "/v1/invoices"): Case("GET", p("/v1/invoices"), SHOP_PEOPLE, query="?shop_id={shop}"),
    ("POST", "/v1/invoices/{invoice_id}/cancel"): Case("POST", p("/v1/invoices/{invoice}/cancel"),
                                                       MANAGERS | {"key_bare"}),
    # the customer at checkout holds the token (tests/integration/test_invoices.py); admitted here: a bad asset
    ("POST", "/v1/invoices/{invoice_id}/payment"): Case(
        "POST", p("/v1/invoices/{invoice}/payment"), MANAGERS, lambda w, _: {"chain": "doge", "asset": "DOGE"}),
    ("GET", "/v1/orders/{order_id}"): Case("GET", p("/v1/orders/{order}"), ORDER_READERS),
    ("GET", "/v1/orders"): Case("GET", p("/v1/orders"), ORDER_READERS | {"other_customer"}, query="?shop_id={shop}"),
    ("PATCH", "/v1/orders/{order_id}"): Case("PATCH", p("/v1/orders/{order}"), OWN_ORDER,
                                             lambda w, _: {"special_instructions": "hot"}),
    ("POST", "/v1/orders/{order_id}/cancel"): Case("POST", p("/v1/orders/{order}/cancel"), ORDER_WRITERS),
    ("POST", "/v1/orders/{order_id}/status"): Case("POST", p("/v1/orders/{order}/status"), SHOP_PEOPLE,
                                                   lambda w, _: {"status": "preparing"}),
    ("POST", "/v1/orders/{order_id}/payment/resolve"): Case(
        "POST", p("/v1/orders/{order}/payment/resolve"), MANAGERS, lambda w, _: {"action": "accept"}),
    ("POST", "/v1/orders/{order_id}/claim"): Case("POST", p("/v1/orders/{order}/claim"), OWN_ORDER),
    ("POST", "/v1/claims/{code}/process"): Case("POST", p("/v1/claims/{claim_code}/process"), SHOP_PEOPLE),
    ("GET", "/v1/orders/{order_id}/claim"): Case("GET", p("/v1/orders/{order}/claim"), ORDER_READERS),
    ("GET", "/v1/shops/{shop_id}/balances"): Case("GET", p("/v1/shops/{shop}/balances"), MANAGERS),
    ("GET", "/v1/shops/{shop_id}/ledger"): Case("GET", p("/v1/shops/{shop}/ledger"), MANAGERS),
    ("GET", "/v1/shops/{shop_id}/ledger.csv"): Case("GET", p("/v1/shops/{shop}/ledger.csv"), MANAGERS),
    ("GET", "/v1/shops/{shop_id}/wallets"): Case("GET", p("/v1/shops/{shop}/wallets"), MANAGERS),
    ("PUT", "/v1/shops/{shop_id}/wallets/{chain}"): Case(
        "PUT", p("/v1/shops/{shop}/wallets/eth"), OWNERS,
        lambda w, _: {"treasury": "0x8ba1f109551bD432803012645Ac136ddd64DBA72"}),
    ("DELETE", "/v1/shops/{shop_id}/wallets/{chain}"): Case("DELETE", p("/v1/shops/{shop}/wallets/eth"), OWNERS),
    ("GET", "/v1/shops/{shop_id}/lightning-node"): Case("GET", p("/v1/shops/{shop}/lightning-node"), MANAGERS),
    # admitted: 422, no node answers there
    ("PUT", "/v1/shops/{shop_id}/lightning-node"): Case(
        "PUT", p("/v1/shops/{shop}/lightning-node"), OWNERS,
        lambda w, _: {"rest_url": "https://127.0.0.1:1", "tls_cert": "-----BEGIN CERTIFICATE-----", "macaroon": "00"}),
    # admitted: 409, the order is paid in ETH
    ("POST", "/v1/orders/{order_id}/lightning-invoice"): Case(
        "POST", p("/v1/orders/{order}/lightning-invoice"), ORDER_READERS),
    ("POST", "/v1/orders/{order_id}/refunds"): Case(  # admitted: 409, the order is unpaid
        "POST", p("/v1/orders/{order}/refunds"), MANAGERS, lambda w, _: {"variant": "crypto_paid"}),
    ("GET", "/v1/refunds/{refund_id}"): Case("GET", p("/v1/refunds/{refund}"), SHOP_PEOPLE),
    ("GET", "/v1/shops/{shop_id}/refunds"): Case("GET", p("/v1/shops/{shop}/refunds"), SHOP_PEOPLE),
    ("POST", "/v1/refunds/{refund_id}/approve"): Case("POST", p("/v1/refunds/{refund}/approve"), MANAGERS),
    ("POST", "/v1/refunds/{refund_id}/signed-psbt"): Case("POST", p("/v1/refunds/{refund}/signed-psbt"), MANAGERS,
                                                          lambda w, _: {"psbt": "cHNidP8="}),
    ("POST", "/v1/refunds/{refund_id}/transaction"): Case(
        "POST", p("/v1/refunds/{refund}/transaction"), MANAGERS, lambda w, _: {"tx_hash": "0x" + "ab" * 32}),
    ("POST", "/v1/refunds/{refund_id}/retry"): Case("POST", p("/v1/refunds/{refund}/retry"), MANAGERS),
    ("POST", "/v1/refunds/{refund_id}/cancel"): Case("POST", p("/v1/refunds/{refund}/cancel"), MANAGERS),
    ("GET", "/v1/refund-claims/{token}"): Case("GET", p("/v1/refund-claims/{refund_token}"), EVERYONE),
    ("POST", "/v1/refund-claims/{token}"): Case("POST", p("/v1/refund-claims/{refund_token}"), EVERYONE,
                                                lambda w, _: {"address": "not an address"}),
    ("POST", "/v1/shops/{shop_id}/payouts"): Case(  # admitted: 422, the shop holds nothing to pay out
        "POST", p("/v1/shops/{shop}/payouts"), OWNERS, lambda w, _: {
            "chain": "eth", "asset": "ETH", "amount": "1", "address": "0x8ba1f109551bD432803012645Ac136ddd64DBA72"}),
    ("GET", "/v1/shops/{shop_id}/payouts"): Case("GET", p("/v1/shops/{shop}/payouts"), MANAGERS),
    ("GET", "/v1/payouts"): Case("GET", p("/v1/payouts"), OPS),
    ("GET", "/v1/payouts/{payout_id}"): Case("GET", p("/v1/payouts/{payout}"), MANAGERS),
    ("POST", "/v1/payouts/{payout_id}/approve"): Case("POST", p("/v1/payouts/{payout}/approve"), OPS),
    ("POST", "/v1/payouts/{payout_id}/cancel"): Case("POST", p("/v1/payouts/{payout}/cancel"), OWNERS),
    ("POST", "/v1/payouts/{payout_id}/retry"): Case("POST", p("/v1/payouts/{payout}/retry"), OPS),
    ("POST", "/v1/payouts/{payout_id}/transaction"): Case(
        "POST", p("/v1/payouts/{payout}/transaction"), OPS, lambda w, _: {"tx_hash": "0x" + "ab" * 32}),
    ("POST", "/v1/payout-batches"): Case("POST", p("/v1/payout-batches"), OPS, lambda w, _: {"limit": 1}),
    ("POST", "/v1/payout-batches/{batch_id}/signed-psbt"): Case(
        "POST", p("/v1/payout-batches/{batch}/signed-psbt"), OPS, lambda w, _: {"psbt": "not a psbt"}),
    ("POST", "/v1/shops/{shop_id}/webhooks"): Case(
        "POST", p("/v1/shops/{shop}/webhooks"), MANAGERS,
        lambda w, _: {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
    ("GET", "/v1/shops/{shop_id}/webhooks"): Case("GET", p("/v1/shops/{shop}/webhooks"), MANAGERS),
    ("PATCH", "/v1/shops/{shop_id}/webhooks/{webhook_id}"): Case(
        "PATCH", p("/v1/shops/{shop}/webhooks/{webhook}"), MANAGERS, lambda w, _: {"description": "till"}),
    ("DELETE", "/v1/shops/{shop_id}/webhooks/{webhook_id}"): Case(
        "DELETE", p("/v1/shops/{shop}/webhooks/{webhook}"), MANAGERS),
    ("GET", "/v1/shops/{shop_id}/webhooks/{webhook_id}/deliveries"): Case(
        "GET", p("/v1/shops/{shop}/webhooks/{webhook}/deliveries"), MANAGERS),
    # no delivery exists: admitted principals get the 404 of the delivery, the others 401/403 first
    ("POST", "/v1/shops/{shop_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Case(
        "POST", p("/v1/shops/{shop}/webhooks/{webhook}/deliveries/" + str(uuid.UUID(int=7)) + "/redeliver"),
        frozenset()),
    ("POST", "/v1/auth/login"): Case("POST", p("/v1/auth/login"), EVERYONE,
                                     lambda w, _: {"email": SPARE["email"], "password": PASSWORD}),
    ("POST", "/v1/auth/logout"): Case("POST", p("/v1/auth/logout"), ACCOUNTS),
    ("GET", "/v1/auth/me"): Case("GET", p("/v1/auth/me"), ACCOUNTS),
    ("POST", "/v1/auth/password"): Case(
        "POST", p("/v1/auth/password"), ACCOUNTS,
        lambda w, _: {"current_password": "not the password", "new_password": "x" * 20}),
    ("GET", "/v1/auth/sessions"): Case("GET", p("/v1/auth/sessions"), ACCOUNTS),
    ("DELETE", "/v1/auth/sessions/{session_id}"): Case("DELETE", p("/v1/auth/sessions/{my_session}"), ACCOUNTS),
    ("POST", "/v1/auth/totp/setup"): Case("POST", p("/v1/auth/totp/setup"), ACCOUNTS),
    ("POST", "/v1/auth/totp/enable"): Case("POST", p("/v1/auth/totp/enable"), ACCOUNTS, lambda w, _: {
        "secret": "A" * 32, "code": "123456", "password": "not the password"}),
    ("POST", "/v1/auth/totp/disable"): Case("POST", p("/v1/auth/totp/disable"), ACCOUNTS,
                                            lambda w, _: {"code": "123456", "password": "not the password"}),
    ("GET", "/v1/shops/{shop_id}/members"): Case("GET", p("/v1/shops/{shop}/members"), OWNERS),
    ("PUT", "/v1/shops/{shop_id}/members/{user_id}"): Case(
        "PUT", lambda w, _: f"/v1/shops/{w.shop}/members/{USERS['staff']}", OWNERS, lambda w, _: {"role": "staff"}),
    ("DELETE", "/v1/shops/{shop_id}/members/{user_id}"): Case(
        "DELETE", lambda w, _: f"/v1/shops/{w.shop}/members/{USERS['staff']}", OWNERS),
    ("POST", "/v1/shops/{shop_id}/invitations"): Case(
        "POST", p("/v1/shops/{shop}/invitations"), OWNERS, lambda w, _: {"email": "new@example.com", "role": "staff"}),
    ("GET", "/v1/shops/{shop_id}/invitations"): Case("GET", p("/v1/shops/{shop}/invitations"), OWNERS),
    ("DELETE", "/v1/shops/{shop_id}/invitations/{invitation_id}"): Case(
        "DELETE", p("/v1/shops/{shop}/invitations/{invitation}"), OWNERS),
    ("POST", "/v1/invitations/accept"): Case("POST", p("/v1/invitations/accept"), EVERYONE,
                                             lambda w, _: {"token": w.invitation_token, "password": PASSWORD}),
    ("POST", "/v1/users"): Case("POST", p("/v1/users"), OPS,
                                lambda w, _: {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}),
    ("POST", "/v1/users/{user_id}/disable"): Case("POST", lambda w, _: f"/v1/users/{SPARE['id']}/disable", OPS),
    ("POST", "/v1/api-keys"): Case("POST", p("/v1/api-keys"), OWNERS, lambda w, _: {
        "name": "till", "permissions": ["orders:read"], "shop_ids": [w.shop]}),
    ("GET", "/v1/api-keys"): Case("GET", p("/v1/api-keys"), OWNERS),
    ("DELETE", "/v1/api-keys/{key_id}"): Case("DELETE", p("/v1/api-keys/{key_id}"), OWNERS),
    ("GET", "/healthz"): Case("GET", p("/healthz"), EVERYONE),
    ("GET", "/readyz"): Case("GET", p("/readyz"), EVERYONE),
    ("GET", "/openapi.json"): Case("GET", p("/openapi.json"), EVERYONE),
}
ADMITTED_404 = {("POST", "/v1/shops/{shop_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")}

USERS: dict[str, str] = {}  # principal -> user id of its account
SPARE: dict[str, str] = {}  # an account the login and disable cases act on


def test_every_route_has_a_policy_and_a_row_in_the_table() -> None:
    routes = all_routes()
    assert all(isinstance(r.policy, Policy) for r in routes)
    assert {(r.method, r.path) for r in routes} == set(TABLE), "a route was added or removed: give it its row"


class Principals:
    def __init__(self, api: Any, tokens: Tokens, db: Any) -> None:
        self.api, self.tokens, self.db = api, tokens, db
        self.customer = tokens.header("customer")
        self.other_customer = tokens.header("customer")
        self.cookies: dict[str, tuple[str, str]] = {}  # principal -> (session id, csrf token)

    async def accounts(self) -> None:
        for name in ("staff", "staff_elsewhere", "merchant", "operator", "spare"):
            email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
            resp = await self.api.post("/v1/users", json={"email": email, "password": PASSWORD,
                                                          "operator": name == "operator"},
                                       headers=self.tokens.operator)
            assert resp.status == 201, await resp.text()
            user_id = (await resp.json())["id"]
            if name == "spare":
                SPARE.update(email=email, id=user_id)
                continue
            USERS[name] = user_id
            if name == "operator":  # payouts and accounts need an operator's second factor
                await self.db.execute("UPDATE users SET totp_secret = $2 WHERE id = $1", uuid.UUID(user_id),
                                      pyotp.random_base32(32))
            await self.login(name, email)

    async def login(self, name: str, email: str) -> None:
        body = {"email": email, "password": PASSWORD}
        found = await self.db.fetchrow("SELECT totp_secret, totp_last_step FROM users WHERE email = $1", email)
        if found["totp_secret"] is not None:  # a code not used yet (each is accepted once)
            step = max(int(time.time()) // 30 - 1, (found["totp_last_step"] or 0) + 1)
            body["totp"] = pyotp.TOTP(found["totp_secret"]).generate_otp(step)
        resp = await self.api.post("/v1/auth/login", json=body)
        assert resp.status == 200, await resp.text()
        self.cookies[name] = (resp.cookies["bp_session"].value, (await resp.json())["csrf_token"])
        secrets_watch.watch(self.cookies[name][0], PASSWORD)

    async def world(self) -> World:
        shop = await make_coffee_shop(self.api, self.tokens)
        other = await make_shop(self.api, self.tokens)
        sid, oid = uuid.UUID(shop.id), uuid.UUID(other["id"])
        grants = [("staff", sid, "staff"), ("staff_elsewhere", oid, "staff"), ("merchant", sid, "owner")]
        for name, shop_id, role in grants:
            await self.db.execute("INSERT INTO shop_grants (user_id, shop_id, role) VALUES ($1, $2, $3)",
                                  uuid.UUID(USERS[name]), shop_id, role)
        await self.api.app[CACHE].invalidate(*(cachekeys.user_access_key(USERS[n]) for n, _, _ in grants))
        product = await self.api.post("/v1/products", json={"name": "Own", "category": "coffee", "base_price": "3"},
                                      headers=self.headers("merchant", "POST"))
        assert product.status == 201, await product.text()
        order = await place(self.api, self.customer, shop, "eth", "ETH")
        code = "".join(secrets.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(8))
        customer_id = await self.db.fetchval("SELECT user_id FROM coffee_orders WHERE id = $1", uuid.UUID(order["id"]))
        await self.db.execute("""INSERT INTO order_claims (order_id, user_id, shop_id, claim_code, status, expires_at)
                                 VALUES ($1, $2, $3, $4, 'active', now() + interval '1 hour')""",
                              uuid.UUID(order["id"]), customer_id, sid, code)
        hook = await self.api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": "http://127.0.0.1:9/h",
                                                                          "event_types": ["*"]},
                                   headers=self.tokens.operator)
        assert hook.status == 201, await hook.text()
        token = secrets.token_urlsafe(32)
        invitation = await self.db.fetchval(
            """INSERT INTO invitations (token_digest, shop_id, email, role, expires_at)
               VALUES ($1, $2, $3, 'staff', now() + interval '1 day') RETURNING id""",
            hashlib.sha256(token.encode()).digest(), sid, f"{uuid.uuid4().hex[:8]}@example.com")
        key_id, keys = None, {}
        for name, perms, shops in (("key", sorted(KEY_PERMISSIONS), [sid]), ("key_bare", ["invoices:create"], [sid]),
                                   ("key_elsewhere", sorted(KEY_PERMISSIONS), [oid])):
            key = "bp_" + secrets.token_urlsafe(32)
            made = await self.db.fetchval(
                """INSERT INTO api_keys (key_digest, prefix, name, permissions, shop_ids) VALUES ($1, $2, $3, $4, $5)
                   RETURNING id""", hashlib.sha256(key.encode()).digest(), key[:10], name, perms, shops)
            keys[name] = key
            secrets_watch.watch(key)
            key_id = key_id or made
        refund = uuid.uuid4()
        await self.db.execute(
            """INSERT INTO transfers (id, kind, payment_id, order_id, shop_id, chain, asset, decimals, variant, amount,
                                      status, claim_expires_at)
               SELECT $1, 'refund', p.id, p.order_id, $2, p.chain, p.crypto_currency, p.decimals, 'custom', 1,
                      'awaiting_claim', now() + interval '1 day'
               FROM crypto_payments p WHERE p.order_id = $3""", refund, sid, uuid.UUID(order["id"]))
        payout, batch = uuid.uuid4(), uuid.uuid4()
        await self.db.execute(
            """INSERT INTO transfers (id, kind, shop_id, chain, asset, decimals, amount, status, method, destination,
                                      batch_id, psbt, approved_at)
               VALUES ($1, 'payout', $2, 'btc', 'BTC', 8, 1, 'awaiting_signature', 'psbt',
                       'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080', $3, 'cHNidP8=', now())""", payout, sid, batch)
        invoice = uuid.uuid4()
        await self.db.execute(
            """INSERT INTO invoices (id, shop_id, amount, currency, assets, tolerance_bps, speed, expires_at)
               VALUES ($1, $2, 5, 'USD', ARRAY['eth/ETH'], 50, 'low', now() + interval '1 hour')""", invoice, sid)
        cart, cart_item = uuid.uuid4(), uuid.uuid4()
        await self.db.execute("INSERT INTO carts (id, user_id, shop_id, expires_at) VALUES ($1, $2, $3, now() + "
                              "interval '1 day')", cart, customer_id, sid)
        await self.db.execute("""INSERT INTO cart_items (id, cart_id, product_id, quantity, customizations)
                                 VALUES ($1, $2, $3, 1, '{"size": ["small"]}')""", cart_item, cart,
                              uuid.UUID(shop.product_id))
        notification, push = uuid.uuid4(), uuid.uuid4()
        await self.db.execute("""INSERT INTO notifications (id, event_id, event_type, channel, user_id, recipient,
                                                            title, body, status)
                                 VALUES ($1, $2, 'order.ready', 'in_app', $3, $4, 'Ready', 'Ready.',
                                         'delivered')""", notification, uuid.uuid4(), customer_id, str(customer_id))
        await self.db.execute("INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) VALUES "
                              "($1, $2, $3, 'BPkey0000000000000000000', 'auth0000')", push, customer_id,
                              f"https://push.example/{push}")
        world = World(shop.id, other["id"], shop.product_id, (await product.json())["id"], shop.supply_id,
                      order["id"], code, (await hook.json())["id"], str(invitation), token, str(key_id), keys=keys,
                      refund=str(refund), refund_token=claim_token(refund, self.api.app[SETTINGS].jwt_secret),
                      payout=str(payout), batch=str(batch), invoice=str(invoice), cart_item=str(cart_item),
                      notification=str(notification), push_subscription=str(push))
        for name in ACCOUNTS:
            world.session_of[name] = str(await self.db.fetchval(
                """INSERT INTO user_sessions (id_digest, user_id, expires_at) VALUES ($1, $2, now() + interval '1h')
                   RETURNING public_id""", secrets.token_bytes(32), uuid.UUID(USERS[name])))
        return world

    def headers(self, name: str, method: str, world: World | None = None) -> dict[str, str]:
        if name == "anonymous":
            return {}
        if name in ("customer", "other_customer"):
            return dict(getattr(self, name))
        if name.startswith("key"):
            assert world is not None
            return {"Authorization": f"Bearer {world.keys[name]}"}
        session, csrf = self.cookies[name]
        found = {"Cookie": f"bp_session={session}"}
        if method not in ("GET", "HEAD"):
            found["X-CSRF-Token"] = csrf
        return found


@pytest.fixture
async def principals(api: Any, tokens: Tokens, db: Any) -> Principals:
    found = Principals(api, tokens, db)
    await found.accounts()
    return found


async def test_every_route_against_every_principal(api: Any, principals: Principals) -> None:
    wrong: list[str] = []
    shared: World | None = None
    for (method, template), case in TABLE.items():
        for name in PRINCIPALS:
            if method == "GET":
                shared = shared or await principals.world()
                world = shared
            else:
                world = await principals.world()
            path = case.path(world, name) + case.query.format(**vars(world))
            body = None if case.body is None else case.body(world, name)
            resp = await api.request(method, path, json=body, headers=principals.headers(name, method, world))
            admitted = resp.status not in (401, 403, 404) or (
                resp.status == 404 and (method, template) in ADMITTED_404 and name in MANAGERS)
            expected = name in case.allowed or ((method, template) in ADMITTED_404 and name in MANAGERS)
            if admitted != expected:
                wrong.append(f"{method} {template} as {name}: {resp.status} {(await resp.text())[:160]}")
            if method == "POST" and template == "/v1/auth/logout" and name in principals.cookies:
                email = await principals.db.fetchval("SELECT email FROM users WHERE id = $1", uuid.UUID(USERS[name]))
                await principals.login(name, email)  # the case ended that session
    assert not wrong, "\n".join(wrong)
