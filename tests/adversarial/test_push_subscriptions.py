"""Web Push on a customer's devices. The attacker holds one order's checkout link (forwarded, or read
where it should not have been) and subscribes their own device with it; or knows a victim's push
endpoint and registers it again, as themselves, with keys of their own."""

from __future__ import annotations

import uuid
from typing import Any

from tests.adversarial.flow_support import issue_refund, paid_order
from tests.conftest import Tokens, wait_for
from tests.integration.engine_support import make_coffee_shop, pay_directly, place
from tests.integration.test_notifications import channels, notify  # noqa: F401 (fixtures)

pytest_plugins = ["tests.integration.engine_support"]


def _name(device: dict[str, Any]) -> str:
    return str(device["endpoint"].rsplit("/", 1)[1])


async def _push_api(make_api: Any, settings: Any) -> Any:
    return await make_api(**{f: getattr(settings, f) for f in ("vapid_private_key", "webhook_allow_private")})


async def test_a_checkout_token_subscribes_a_device_to_that_one_order(
        make_api, tokens: Tokens, db, engine, channels, notify) -> None:  # noqa: F811
    """A customer with an account has two orders (at two shops); whoever holds the first one's checkout
    token subscribes a device with it. That device hears about the first order only: not the second
    order's payment, not its refund link."""
    settings, _, push = channels
    api = await _push_api(make_api, settings)
    me = tokens.header("customer", sub=uuid.uuid4())
    mine = push.device()
    assert (await api.post("/v1/users/me/push-subscriptions", headers=me, json=mine)).status == 201
    here, there = await make_coffee_shop(api, tokens), await make_coffee_shop(api, tokens)
    first = await place(api, me, here, "eth", "ETH")
    attacker = push.device()
    made = await api.post(f"/v1/orders/{first['id']}/push-subscriptions", json=attacker,
                          headers={"X-Checkout-Token": first["checkout_token"]})
    assert made.status == 201, await made.text()
    second = await paid_order(api, db, engine, there, me)
    refund = await issue_refund(api, there.merchant, second["id"])

    async def my_device_told() -> bool:
        titles = [m["title"] for m in push.received.get(_name(mine), [])]
        return "A refund is waiting for you" in titles

    await wait_for(my_device_told, timeout=60)
    told = [m for m in push.received[_name(mine)] if m["title"] == "A refund is waiting for you"]
    assert told[0]["link"] == f"https://pay.example/refunds/claim/{refund['claim_token']}"
    reached = {r["recipient"] for r in await db.fetch(
        "SELECT recipient FROM notifications WHERE channel = 'push' AND order_id = $1", uuid.UUID(second["id"]))}
    assert (await made.json())["id"] not in reached, "a device subscribed with one order's token hears of another"
    assert push.received.get(_name(attacker), []) == []

    # the first order's own news reaches the device subscribed with its token
    await pay_directly(db, first)
    await engine()
    await wait_for(lambda: _async(bool(push.received.get(_name(attacker)))), timeout=60)
    assert [m["title"] for m in push.received[_name(attacker)]] == ["Payment received"]


async def test_re_registering_someone_elses_push_endpoint_moves_nothing(
        make_api, tokens: Tokens, db, engine, channels, notify) -> None:  # noqa: F811
    """The victim's device is subscribed to their account. The attacker registers the same endpoint as
    themselves (and for a guest order of their own), with their own keys: the victim's device keeps
    getting the victim's notifications, encrypted to the victim's keys, and none goes to the attacker."""
    settings, _, push = channels
    api = await _push_api(make_api, settings)
    shop = await make_coffee_shop(api, tokens)
    victim, attacker = tokens.header("customer", sub=uuid.uuid4()), tokens.header("customer", sub=uuid.uuid4())
    device = push.device()
    made = await api.post("/v1/users/me/push-subscriptions", headers=victim, json=device)
    assert made.status == 201, await made.text()
    subscription = (await made.json())["id"]
    stolen = {"endpoint": device["endpoint"], "keys": push.device()["keys"]}  # the attacker's own keys
    resp = await api.post("/v1/users/me/push-subscriptions", headers=attacker, json=stolen)
    assert resp.status == 409, await resp.text()
    theirs = await place(api, {}, shop, "eth", "ETH")
    await api.post(f"/v1/orders/{theirs['id']}/push-subscriptions", json=stolen,
                   headers={"X-Checkout-Token": theirs["checkout_token"]})
    row = await db.fetchrow("SELECT user_id, p256dh FROM push_subscriptions WHERE id = $1", uuid.UUID(subscription))
    assert row is not None and row["p256dh"] == device["keys"]["p256dh"], "the victim's device was re-keyed"

    order = await paid_order(api, db, engine, shop, victim)
    await wait_for(lambda: _async(bool(push.received.get(_name(device)))), timeout=60)
    assert [m["title"] for m in push.received[_name(device)]] == ["Payment received"]  # decrypted with its keys
    reached = [r["recipient"] for r in await db.fetch(
        "SELECT recipient FROM notifications WHERE channel = 'push' AND order_id = $1", uuid.UUID(order["id"]))]
    assert reached == [subscription]
    inbox = await (await api.get("/v1/notifications", headers=attacker)).json()
    assert inbox["items"] == []


async def _async(value: bool) -> bool:
    return value
