"""The access matrix of tests/integration/test_access_matrix.py, for data instead of routes: which
principal receives which capability, through every way data leaves the platform. Written by hand as a
table (not derived from the code), so a flow that starts carrying a capability to someone new fails here.

Three capabilities are followed: a refund's claim token (whoever holds it says where the refund goes),
an order's checkout token (its checkout page: status, claim code at the counter, push for the order) and
an invoice's checkout token (its link, handed to the buyer by whoever made it). The flows: the shop's
live event stream each principal opens, a webhook endpoint each principal registers for `*` (asking for
refund claim links where it may), the order, the refund and the invoice as each reads them, and each
principal's notifications. A principal refused a flow (403) receives nothing through it.

One world: a shop; its staff member, its owner (merchant) and a manager, signed in; three API keys of
the shop (orders:read; webhooks:manage; refunds:create with orders:read and webhooks:manage, an
integration that issues refunds and hands the links on); a customer with an order, paid, then refunded;
an invoice the owner made.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests import secrets_watch
from tests.adversarial.flow_support import ShopStream, api_key, feed_listening, issue_refund, paid_order, signed_in
from tests.conftest import Tokens, wait_for
from tests.integration.engine_support import make_coffee_shop
from tests.integration.webhook_support import Receiver

pytest_plugins = ["tests.integration.engine_support", "tests.integration.webhook_support",
                  "tests.adversarial.flow_support"]

PRINCIPALS = ("staff", "merchant", "manager", "reader_key", "webhooks_key", "refunds_key", "customer")
CLAIM, CHECKOUT, INVOICE_LINK = "refund claim token", "order checkout token", "invoice checkout token"
NOBODY: frozenset[str] = frozenset()
REFUNDERS = frozenset({"merchant", "manager", "refunds_key"})  # hold refunds:create on the shop
INVOICERS = frozenset({"merchant", "manager"})  # hold invoices:create on the shop
CUSTOMER = frozenset({"customer"})

# (flow, capability) -> the principals that receive it
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("shop stream", CLAIM): REFUNDERS,
    ("shop stream", CHECKOUT): NOBODY,
    ("shop stream", INVOICE_LINK): NOBODY,
    ("webhook", CLAIM): REFUNDERS,  # endpoints they marked refund_claims
    ("webhook", CHECKOUT): NOBODY,
    ("webhook", INVOICE_LINK): NOBODY,
    ("order", CLAIM): NOBODY,
    ("order", CHECKOUT): CUSTOMER,  # whoever placed it
    ("order", INVOICE_LINK): NOBODY,
    ("refund", CLAIM): REFUNDERS,
    ("refund", CHECKOUT): NOBODY,
    ("refund", INVOICE_LINK): NOBODY,
    ("invoice", CLAIM): NOBODY,
    ("invoice", CHECKOUT): NOBODY,
    ("invoice", INVOICE_LINK): INVOICERS,  # those who may make invoices hand the link on
    ("notifications", CLAIM): CUSTOMER,
    ("notifications", CHECKOUT): CUSTOMER,
    ("notifications", INVOICE_LINK): NOBODY,
}


async def _register(api: Any, shop_id: str, headers: dict[str, str], receiver: Receiver) -> bool:
    """An endpoint for `*`, with refund claim links if the principal may ask for them; False if refused."""
    url = f"/v1/shops/{shop_id}/webhooks"
    resp = await api.post(url, json={"url": receiver.url, "event_types": ["*"], "refund_claims": True},
                          headers=headers)
    if resp.status in (403, 422):  # may not carry claim links (422: the field is unknown)
        resp = await api.post(url, json={"url": receiver.url, "event_types": ["*"]}, headers=headers)
    if resp.status != 201:
        return False
    receiver.secret = (await resp.json())["secret"]
    secrets_watch.watch(receiver.secret)
    return True


async def _text(api: Any, path: str, headers: dict[str, str]) -> str:
    resp = await api.get(path, headers=headers)
    return await resp.text() if resp.status == 200 else ""


async def test_who_receives_claim_and_checkout_tokens_through_each_flow(
        api, tokens: Tokens, db, engine, delivery_services, notifier) -> None:
    await delivery_services(5)
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    who: dict[str, dict[str, str]] = {
        "staff": shop.staff, "merchant": shop.merchant,
        "manager": await signed_in(api, tokens, db, shop.id, "manager"),
        "reader_key": await api_key(db, shop.id, "orders:read"),
        "webhooks_key": await api_key(db, shop.id, "webhooks:manage"),
        "refunds_key": await api_key(db, shop.id, "refunds:create", "orders:read", "webhooks:manage"),
        "customer": customer,
    }
    receivers = {name: Receiver() for name in PRINCIPALS}
    streams = {name: ShopStream(api, shop.id, who[name]) for name in PRINCIPALS}
    try:
        hooked = set()
        for name in PRINCIPALS:
            await receivers[name].start()
            if await _register(api, shop.id, who[name], receivers[name]):
                hooked.add(name)
        watching = {name for name in PRINCIPALS if await streams[name].open() == 200}
        await feed_listening(api)

        asked = {"shop_id": shop.id, "amount": "5.00", "assets": [{"chain": "eth", "asset": "ETH"}]}
        made = await api.post("/v1/invoices", json=asked, headers=shop.merchant)
        assert made.status == 201, await made.text()
        invoice = await made.json()
        order = await paid_order(api, db, engine, shop, customer)
        refund = await issue_refund(api, shop.merchant, order["id"])
        tokens_of = {CLAIM: refund["claim_token"], CHECKOUT: order["checkout_token"],
                     INVOICE_LINK: invoice["checkout_token"]}
        assert all(tokens_of.values())

        async def everyone_told() -> bool:
            streamed = all(s.of("refund.created", transfer_id=refund["id"])
                           for n, s in streams.items() if n in watching)
            delivered = all(any(p["type"] == "refund.created" and p["data"]["transfer_id"] == refund["id"]
                                for p in receivers[n].payloads.values()) for n in hooked)
            inbox = await _text(api, "/v1/notifications", customer)
            return streamed and delivered and "A refund is waiting for you" in inbox

        await wait_for(everyone_told, timeout=90)

        received: dict[tuple[str, str], set[str]] = {key: set() for key in EXPECTED}
        for name in PRINCIPALS:
            headers = {k: v for k, v in who[name].items() if k != "X-CSRF-Token"}
            seen = {
                "shop stream": streams[name].text,
                "webhook": json.dumps(list(receivers[name].payloads.values())),
                "order": await _text(api, f"/v1/orders/{order['id']}", headers),
                "refund": await _text(api, f"/v1/refunds/{refund['id']}", headers),
                "invoice": await _text(api, f"/v1/invoices/{invoice['id']}", headers),
                "notifications": await _text(api, "/v1/notifications", headers),
            }
            for (flow, capability), got in received.items():
                if tokens_of[capability] in seen[flow]:
                    got.add(name)
        wrong = [f"{flow} / {capability}: received by {sorted(received[(flow, capability)])}, "
                 f"expected {sorted(allowed)}"
                 for (flow, capability), allowed in EXPECTED.items() if received[(flow, capability)] != allowed]
        assert not wrong, "\n".join(wrong)
        # the table is not met vacuously: each flow reached the principals it should have
        assert watching == {"staff", "merchant", "manager", "reader_key", "refunds_key"}
        assert hooked == {"merchant", "manager", "webhooks_key", "refunds_key"}
    finally:
        for name in PRINCIPALS:
            await streams[name].close()
            await receivers[name].stop()
