"""A refund's claim token picks where the money goes (crypto_paid and overpaid refunds are approved the
moment they are claimed). The attacker is whoever may watch the shop but not refund: its staff, a
read-only key, a key that may only manage webhooks. They try the shop's event stream, a webhook for
`*`, the delivery log, and repointing an endpoint that carries claim tokens."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec

from beanpay import cachekeys
from beanpay.api import shop_events
from beanpay.api.state import CACHE, SETTINGS
from beanpay.engine.transfers.service import claim_token
from beanpay.engine.webhooks.sender import WebhookSender
from tests import secrets_watch
from tests.adversarial.flow_support import (
    ShopStream,
    api_key,
    feed_listening,
    issue_refund,
    paid_order,
    signed_in,
)
from tests.conftest import Tokens, wait_for
from tests.integration.engine_support import make_coffee_shop
from tests.integration.webhook_support import Receiver

pytest_plugins = ["tests.integration.engine_support", "tests.integration.webhook_support",
                  "tests.adversarial.flow_support"]


async def test_the_event_outbox_never_holds_a_claim_token(api, tokens: Tokens, db, engine) -> None:
    """Events are stored (outbox, journal), relayed to Kafka and fanned out to many readers: a refund's
    events must not carry the token at all, so no reader of any copy of them can claim the refund."""
    shop = await make_coffee_shop(api, tokens)
    order = await paid_order(api, db, engine, shop, tokens.header("customer", sub=uuid.uuid4()))
    refund = await issue_refund(api, shop.merchant, order["id"])
    token = claim_token(uuid.UUID(refund["id"]), api.app[SETTINGS].jwt_secret)
    assert refund["claim_token"] == token  # the one who issued it is given the link
    payloads = [r["payload"] for r in await db.fetch(
        "SELECT payload::text AS payload FROM event_outbox WHERE aggregate_id = $1 AND event_type LIKE 'refund.%'",
        order["id"])]
    assert payloads, "refund.created was emitted"
    assert all(token not in p for p in payloads), "the claim token travels in the refund's events"


async def test_staff_and_read_only_keys_see_no_claim_token_on_the_shop_stream(
        api, tokens: Tokens, db, engine, relay) -> None:
    """A barista's board and an orders:read integration both watch the shop's live events; the refund
    shows there (its status), its claim token only on the stream of someone who may issue refunds."""
    shop = await make_coffee_shop(api, tokens)
    order = await paid_order(api, db, engine, shop, tokens.header("customer", sub=uuid.uuid4()))
    streams = {"staff": ShopStream(api, shop.id, shop.staff),
               "reader": ShopStream(api, shop.id, await api_key(db, shop.id, "orders:read")),
               "merchant": ShopStream(api, shop.id, shop.merchant)}
    try:
        for stream in streams.values():
            assert await stream.open() == 200
        await feed_listening(api)
        refund = await issue_refund(api, shop.merchant, order["id"])

        async def all_told() -> bool:
            return all(s.of("refund.created", transfer_id=refund["id"]) for s in streams.values())

        await wait_for(all_told, timeout=30)
        for name in ("staff", "reader"):
            (seen,) = streams[name].of("refund.created", transfer_id=refund["id"])
            assert seen["claim_token"] is None, f"{name} was sent the refund's claim token"
            assert refund["claim_token"] not in streams[name].text
        (seen,) = streams["merchant"].of("refund.created", transfer_id=refund["id"])
        assert seen["claim_token"] == refund["claim_token"]  # the owner may issue refunds: the link is theirs
    finally:
        for stream in streams.values():
            await stream.close()


async def test_a_webhooks_only_key_gets_no_claim_token_and_cannot_redirect_an_endpoint_that_does(
        api, tokens: Tokens, db, engine, delivery_services) -> None:
    """A key with just webhooks:manage registers an endpoint for `*`: it gets refund.created without the
    token. Only someone who may issue refunds marks an endpoint `refund_claims` (it then gets the token,
    computed at delivery: the stored delivery, which webhooks:manage can read back, never holds it), and
    the webhooks-only key can neither mark its own nor point the marked one at itself."""
    await delivery_services(5)
    shop = await make_coffee_shop(api, tokens)
    hooks_key = await api_key(db, shop.id, "webhooks:manage")
    url = f"/v1/shops/{shop.id}/webhooks"
    mine, theirs = Receiver(), Receiver()
    await mine.start()
    await theirs.start()
    try:
        resp = await api.post(url, json={"url": mine.url, "event_types": ["*"]}, headers=hooks_key)
        assert resp.status == 201, await resp.text()
        attacker = dict(await resp.json())
        mine.secret = attacker["secret"]
        secrets_watch.watch(mine.secret)

        def delivered(receiver: Receiver, refund: dict[str, Any]) -> list[dict[str, Any]]:
            return [p["data"] for p in receiver.payloads.values()
                    if p["type"] == "refund.created" and p["data"]["transfer_id"] == refund["id"]]

        order = await paid_order(api, db, engine, shop, tokens.header("customer", sub=uuid.uuid4()))
        first = await issue_refund(api, shop.merchant, order["id"])
        await wait_for(lambda: _async(bool(delivered(mine, first))), timeout=60)
        assert delivered(mine, first)[0]["claim_token"] is None, "the webhooks-only key's endpoint got the token"

        resp = await api.post(url, json={"url": theirs.url, "event_types": ["refund.created"], "refund_claims": True},
                              headers=shop.merchant)
        assert resp.status == 201, await resp.text()
        claims = dict(await resp.json())
        assert claims["refund_claims"] is True
        theirs.secret = claims["secret"]
        secrets_watch.watch(theirs.secret)
        order = await paid_order(api, db, engine, shop, tokens.header("customer", sub=uuid.uuid4()))
        second = await issue_refund(api, shop.merchant, order["id"])
        await wait_for(lambda: _async(bool(delivered(mine, second)) and bool(delivered(theirs, second))), timeout=60)
        assert delivered(mine, second)[0]["claim_token"] is None
        assert delivered(theirs, second)[0]["claim_token"] == second["claim_token"]
        assert mine.bad_signatures == theirs.bad_signatures == 0  # the token is signed with the rest
        stored = [r["body"] for r in await db.fetch(
            "SELECT d.body FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id "
            "WHERE e.shop_id = $1", uuid.UUID(shop.id))]
        assert stored and all(second["claim_token"] not in b for b in stored)

        # the key may not mark an endpoint, nor repoint or re-scope the one that is marked
        resp = await api.post(url, json={"url": mine.url, "event_types": ["*"], "refund_claims": True},
                              headers=hooks_key)
        assert resp.status == 403, await resp.text()
        resp = await api.patch(f"{url}/{attacker['id']}", json={"refund_claims": True}, headers=hooks_key)
        assert resp.status == 403, await resp.text()
        for change in ({"url": mine.url}, {"event_types": ["*"]}):
            resp = await api.patch(f"{url}/{claims['id']}", json=change, headers=hooks_key)
            assert resp.status == 403, (change, await resp.text())
        # turning the mark off, or changing a description, is not a way in: allowed
        resp = await api.patch(f"{url}/{claims['id']}", json={"description": "till"}, headers=hooks_key)
        assert resp.status == 200, await resp.text()
        resp = await api.patch(f"{url}/{claims['id']}", json={"refund_claims": False}, headers=hooks_key)
        assert resp.status == 200 and (await resp.json())["refund_claims"] is False
        # a manager marks it again (managers may issue refunds)
        resp = await api.patch(f"{url}/{claims['id']}", json={"refund_claims": True}, headers=shop.merchant)
        assert resp.status == 200 and (await resp.json())["refund_claims"] is True
    finally:
        await mine.stop()
        await theirs.stop()


async def _async(value: bool) -> bool:
    return value


async def test_a_delivery_stored_with_a_claim_token_goes_out_without_it(
        api, tokens: Tokens, db, chain_settings) -> None:
    """Deliveries written before claim tokens left events (or from an event a process of the previous
    release emitted during a rolling deploy) still hold the token in their stored body. The webhooks-only
    key asks for one to be sent again to its endpoint: the token is blanked on the way out."""
    shop = await make_coffee_shop(api, tokens)
    hooks_key = await api_key(db, shop.id, "webhooks:manage")
    receiver = Receiver()
    await receiver.start()
    try:
        resp = await api.post(f"/v1/shops/{shop.id}/webhooks", json={"url": receiver.url, "event_types": ["*"]},
                              headers=hooks_key)
        assert resp.status == 201, await resp.text()
        hook = await resp.json()
        receiver.secret = hook["secret"]
        secrets_watch.watch(receiver.secret)
        refund = uuid.uuid4()
        token = claim_token(refund, chain_settings.jwt_secret)
        data = {"transfer_id": str(refund), "kind": "refund", "shop_id": shop.id, "order_id": str(uuid.uuid4()),
                "payment_id": None, "chain": "eth", "asset": "ETH", "decimals": 18, "variant": "crypto_paid",
                "amount": "1", "status": "awaiting_claim", "destination": None, "txid": None, "claim_token": token,
                "failure": None}
        body = msgspec.json.encode({"type": "refund.created", "timestamp": "2026-01-01T00:00:00Z",
                                    "data": data}).decode()
        delivery = await db.fetchval(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, status) "
            "VALUES ($1, $2, 'refund.created', $3, 'succeeded') RETURNING id", uuid.UUID(hook["id"]), uuid.uuid4(),
            body)
        resp = await api.post(f"/v1/shops/{shop.id}/webhooks/{hook['id']}/deliveries/{delivery}/redeliver",
                              headers=hooks_key)
        assert resp.status == 202
        sender = WebhookSender(msgspec.structs.replace(chain_settings, webhook_timeout_seconds=2.0), db)
        async with sender.session() as session:
            async def sent() -> bool:
                await sender.send_due(session)
                return bool(receiver.payloads)

            await wait_for(sent, timeout=20)
        (got,) = receiver.payloads.values()
        assert got["data"]["transfer_id"] == str(refund)
        assert got["data"]["claim_token"] is None, "a stored claim token was sent to a webhooks-only endpoint"
    finally:
        await receiver.stop()


async def test_a_manager_removed_from_the_shop_gets_no_claim_token_on_a_stream_left_open(
        api, tokens: Tokens, db, engine, relay, monkeypatch) -> None:
    """A manager opens the shop's stream, then is removed from the shop (or their key revoked) but keeps
    the stream open: what it sends from then on is checked against who they are now, so a refund issued
    after the removal does not hand them its claim token (the stream ends), even before the stream's
    periodic check of its principal comes round."""
    monkeypatch.setattr(shop_events, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(shop_events, "RECHECK_SECONDS", 3600.0, raising=False)
    shop = await make_coffee_shop(api, tokens)
    order = await paid_order(api, db, engine, shop, tokens.header("customer", sub=uuid.uuid4()))
    manager = await signed_in(api, tokens, db, shop.id, "manager")
    kept, watcher = ShopStream(api, shop.id, manager), ShopStream(api, shop.id, shop.merchant)
    try:
        assert await kept.open() == 200 and await watcher.open() == 200
        await feed_listening(api)
        user = await db.fetchval("SELECT user_id FROM shop_grants WHERE shop_id = $1 AND role = 'manager'",
                                 uuid.UUID(shop.id))
        await db.execute("DELETE FROM shop_grants WHERE user_id = $1 AND shop_id = $2", user, uuid.UUID(shop.id))
        await api.app[CACHE].invalidate(cachekeys.user_access_key(user))
        refund = await issue_refund(api, shop.merchant, order["id"])
        await wait_for(lambda: _async(bool(watcher.of("refund.created", transfer_id=refund["id"]))), timeout=30)
        await asyncio.sleep(1)
        assert refund["claim_token"] not in kept.text, "a removed manager's open stream got the claim token"
    finally:
        await kept.close()
        await watcher.close()
