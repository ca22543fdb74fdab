"""Customer notifications on real services: events out of Kafka become one email (received by a real
SMTP server, aiosmtpd), one Web Push (VAPID-signed and encrypted, received and decrypted by a local push
endpoint) and one in-app notification each, never two, even when the events are read again; a mail
server that is down is retried with backoff; preferences choose the channels."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator
from email import message_from_bytes
from typing import Any

import aiohttp
import http_ece
import jwt
import msgspec
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid

from beanpay.config import Settings
from beanpay.deploy.endpoint import free_port
from beanpay.engine.notifications.fanout import TOPICS, Notifier
from beanpay.engine.notifications.sender import NotificationSender
from beanpay.engine.notifications.vapid import public_key as vapid_public_key
from beanpay.events.relay import Relay
from tests import secrets_watch
from tests.bench.local import group_at_end
from tests.conftest import Tokens, open_test_db, wait_for
from tests.integration.engine_support import make_coffee_shop, pay_directly, place
from tests.integration.kafka_reader import read_topic

pytest_plugins = ["tests.integration.engine_support"]




class Mailbox:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.port = free_port()
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class PushService:
    """A push service on loopback: checks each request's VAPID token and decrypts its payload with the
    device's private key, as a browser's push service and the browser would."""

    def __init__(self, vapid_public: str) -> None:
        self.vapid_public = vapid_public
        self.port = free_port()
        self.devices: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()
        self.runner: web.AppRunner | None = None

    def device(self) -> dict[str, Any]:
        name = uuid.uuid4().hex
        key, auth = ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
        self.devices[name] = (key, auth)
        point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
        return {"endpoint": f"http://127.0.0.1:{self.port}/push/{name}", "keys": {"p256dh": b64(point),
                                                                                 "auth": b64(auth)}}

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.gone:
            return web.Response(status=410)
        scheme, _, params = request.headers["Authorization"].partition(" ")
        found = dict(p.split("=", 1) for p in params.split(","))
        assert scheme == "vapid" and found["k"].strip() == self.vapid_public
        raw = base64.urlsafe_b64decode(found["k"].strip() + "==")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        claims = jwt.decode(found["t"].strip(), public, algorithms=["ES256"], audience=f"http://127.0.0.1:{self.port}")
        assert claims["sub"].startswith("mailto:")
        key, auth = self.devices[name]
        plain = http_ece.decrypt(await request.read(), private_key=key, auth_secret=auth, version="aes128gcm")
        self.received.setdefault(name, []).append(json.loads(plain))
        return web.Response(status=201)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{name}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def channels(chain_settings: Settings) -> AsyncIterator[tuple[Settings, Mailbox, PushService]]:
    vapid = Vapid()
    vapid.generate_keys()
    private = vapid.private_pem().decode()
    secrets_watch.watch(private)
    mailbox, push = Mailbox(), PushService(vapid_public_key(private))
    mailbox.start()
    await push.start()
    settings = msgspec.structs.replace(
        chain_settings, smtp_host="127.0.0.1", smtp_port=mailbox.port, vapid_private_key=private,
        webhook_allow_private=True, notification_group=f"test-{uuid.uuid4().hex}", notification_backoff_seconds=0.2,
        public_url="https://pay.example")
    yield settings, mailbox, push
    mailbox.stop()
    await push.stop()


@pytest.fixture
async def notify(channels: tuple[Settings, Mailbox, PushService], db: Any) -> AsyncIterator[Notifier]:
    """The relay, the notifier's fan-out and its sender, running (the group starting at the topics' ends)."""
    settings = channels[0]
    await group_at_end(settings.kafka_servers, settings.notification_group, TOPICS)
    stop = asyncio.Event()
    notifier = Notifier(settings, db)
    tasks = [asyncio.create_task(Relay(settings, db).run(stop)), asyncio.create_task(notifier.run(stop)),
             asyncio.create_task(NotificationSender(settings, db).run(stop))]
    yield notifier
    stop.set()
    _, late = await asyncio.wait(tasks, timeout=15)
    for task in late:  # a sender mid-batch (mail to other tests' closed servers) must not outlive its test
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)


async def test_a_paid_order_is_told_once_by_email_push_and_in_app(
        api, make_api, tokens: Tokens, db, engine, channels, notify) -> None:
    settings, mailbox, push = channels
    api = await make_api(**{f: getattr(settings, f) for f in ("vapid_private_key", "webhook_allow_private")})
    shop = await make_coffee_shop(api, tokens)
    me = tokens.header("customer", sub=uuid.uuid4())
    email = f"ana-{uuid.uuid4().hex[:8]}@example.com"
    prefs = await api.put("/v1/users/me/notification-preferences", headers=me, json={"email": email})
    assert prefs.status == 200, await prefs.text()
    key = await (await api.get("/v1/push/vapid-public-key")).json()
    assert key["public_key"] == push.vapid_public
    device = push.device()
    subscribed = await api.post("/v1/users/me/push-subscriptions", headers=me, json=device)
    assert subscribed.status == 201, await subscribed.text()

    order = await place(api, me, shop, "eth", "tUSDC")
    await pay_directly(db, order)
    await engine()
    name = device["endpoint"].rsplit("/", 1)[1]
    mine = lambda: [m for m in mailbox.messages if m["To"] == email]  # noqa: E731 (other tests' mail may arrive)
    await wait_for(lambda: _async(bool(mine()) and bool(push.received.get(name))), timeout=30)
    mail = mine()[0]
    assert mail["Subject"] == "Payment received"
    assert "https://pay.example/pay/" in mail.get_payload()
    pushed = push.received[name][0]
    assert pushed["title"] == "Payment received" and pushed["link"].startswith("https://pay.example/pay/")

    inbox = await (await api.get("/v1/notifications", headers=me)).json()
    assert [(n["title"], n["status"]) for n in inbox["items"]] == [("Payment received", "delivered")]
    read = await api.post(f"/v1/notifications/{inbox['items'][0]['id']}/read", headers=me)
    assert read.status == 200 and (await read.json())["status"] == "read"
    assert (await api.post(f"/v1/notifications/{inbox['items'][0]['id']}/read", headers=me)).status == 200
    assert (await (await api.get("/v1/notifications?unread=true", headers=me)).json())["items"] == []
    other = tokens.header("customer", sub=uuid.uuid4())
    assert (await api.post(f"/v1/notifications/{inbox['items'][0]['id']}/read", headers=other)).status == 404

    rows = await db.fetch("SELECT channel, status FROM notifications WHERE order_id = $1 ORDER BY channel",
                          uuid.UUID(order["id"]))
    assert [(r["channel"], r["status"]) for r in rows] == [("email", "sent"), ("in_app", "read"), ("push", "sent")]
    ids = [r["id"] for r in await db.fetch("SELECT id FROM notifications WHERE order_id = $1",
                                            uuid.UUID(order["id"]))]

    def published() -> list[str]:  # as it reached Kafka, read with kcat
        return sorted(m["envelope"]["type"] for m in read_topic(settings.kafka_servers, "notification-events",
                                                                {str(i) for i in ids}))

    expected = ["notification.delivered", "notification.read", "notification.sent", "notification.sent"]
    await wait_for(lambda: _async(published() == expected), timeout=30)

    # the same events read again (a second notifier group from the start): nobody is told twice
    again = msgspec.structs.replace(settings, notification_group=f"again-{uuid.uuid4().hex}")
    replayed = Notifier(again, db)
    stop = asyncio.Event()
    task = asyncio.create_task(replayed.run(stop))
    await wait_for(lambda: _async(replayed.connected), timeout=30)
    await asyncio.sleep(2)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE order_id = $1", uuid.UUID(order["id"])) == 3
    assert len(mine()) == 1 and len(push.received[name]) == 1


async def test_a_guest_subscribes_from_the_checkout_and_is_told_the_order_is_ready(
        make_api, tokens: Tokens, db, engine, channels, notify) -> None:
    settings, _, push = channels
    api = await make_api(**{f: getattr(settings, f) for f in ("vapid_private_key", "webhook_allow_private")})
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, {}, shop, "eth", "tUSDC")  # a guest: no account, only the checkout link
    page = await (await api.get(f"/pay/{order['checkout_token']}")).text()
    assert f'data-vapid="{push.vapid_public}"' in page  # the page offers to subscribe
    device = push.device()
    path = f"/v1/orders/{order['id']}/push-subscriptions"
    assert (await api.post(path, json=device)).status == 404  # no checkout token: no such order
    other = await place(api, {}, shop, "eth", "tUSDC")
    refused = await api.post(path, json=device, headers={"X-Checkout-Token": other["checkout_token"]})
    assert refused.status == 404
    made = await api.post(path, json=device, headers={"X-Checkout-Token": order["checkout_token"]})
    assert made.status == 201, await made.text()
    await pay_directly(db, order)
    await engine()
    for status in ("preparing", "ready"):
        moved = await api.post(f"/v1/orders/{order['id']}/status", json={"status": status}, headers=shop.staff)
        assert moved.status == 200, await moved.text()
    name = device["endpoint"].rsplit("/", 1)[1]
    await wait_for(lambda: _async([m["title"] for m in push.received.get(name, [])] == ["Payment received",
                                                                                           "Your order is ready"]),
                   timeout=30)
    assert push.received[name][1]["body"].startswith("Pick it up at")


async def test_a_mail_server_that_is_down_is_retried_and_a_gone_device_is_dropped(
        fresh_settings: Settings, channels) -> None:
    """On a database of its own, so the sender's batch holds exactly this test's two notifications."""
    settings, mailbox, push = channels
    settings = msgspec.structs.replace(settings, database_url=fresh_settings.database_url)
    db = await open_test_db(settings.dsn)
    try:
        await _retried_and_dropped(settings, mailbox, push, db)
    finally:
        await db.close()


async def _retried_and_dropped(settings: Settings, mailbox: Mailbox, push: PushService, db: Any) -> None:
    me, order_id = uuid.uuid4(), uuid.uuid4()
    device = push.device()
    push.gone.add(device["endpoint"].rsplit("/", 1)[1])
    sub = await db.fetchval("INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth) VALUES "
                            "($1, $2, $3, $4, $5) RETURNING id", uuid.uuid4(), me, device["endpoint"],
                            device["keys"]["p256dh"], device["keys"]["auth"])
    event = uuid.uuid4()
    for channel, recipient in (("email", "bo@example.com"), ("push", str(sub))):
        await db.execute("""INSERT INTO notifications (id, event_id, event_type, channel, user_id, recipient, order_id,
                                                       title, body, status)
                            VALUES ($1, $2, 'order.ready', $3, $4, $5, $6, 'Your order is ready', 'Pick it up.',
                                    'pending')""", uuid.uuid4(), event, channel, me, recipient, order_id)
    mailbox.stop()  # the mail server is down
    down = NotificationSender(msgspec.structs.replace(settings, smtp_timeout_seconds=2.0), db)
    async with aiohttp.ClientSession() as session:
        assert await down.send_due(session) == 2
    rows = {r["channel"]: r for r in await db.fetch("SELECT * FROM notifications WHERE event_id = $1", event)}
    assert rows["email"]["status"] == "pending" and rows["email"]["attempts"] == 1 and rows["email"]["last_error"]
    assert rows["email"]["next_attempt_at"] > dt.datetime.now(dt.UTC)  # backed off
    assert rows["push"]["status"] == "failed"  # the device unsubscribed: 410
    assert await db.fetchval("SELECT gone_at FROM push_subscriptions WHERE id = $1", sub) is not None

    mailbox.start()
    await db.execute("UPDATE notifications SET next_attempt_at = now() WHERE event_id = $1", event)
    async with aiohttp.ClientSession() as session:
        assert await NotificationSender(settings, db).send_due(session) == 1
    assert await db.fetchval("SELECT status FROM notifications WHERE event_id = $1 AND channel = 'email'",
                             event) == "sent"
    assert [m["Subject"] for m in mailbox.messages if m["To"] == "bo@example.com"] == ["Your order is ready"]


async def test_preferences_choose_the_channels(api, tokens: Tokens, db, engine, channels, notify) -> None:
    _, mailbox, _ = channels
    shop = await make_coffee_shop(api, tokens)
    me = tokens.header("customer", sub=uuid.uuid4())
    put = await api.put("/v1/users/me/notification-preferences", headers=me, json={
        "email": "cy@example.com", "email_enabled": False, "language": "es"})
    assert put.status == 200
    assert (await api.put("/v1/users/me/notification-preferences", headers=me,
                          json={"email": "not an email"})).status == 422
    assert (await (await api.get("/v1/users/me/notification-preferences", headers=me)).json())["language"] == "es"
    order = await place(api, me, shop, "eth", "tUSDC")
    await pay_directly(db, order)
    await engine()

    async def told() -> bool:
        return bool((await (await api.get("/v1/notifications", headers=me)).json())["items"])

    await wait_for(told, timeout=30)
    inbox = await (await api.get("/v1/notifications", headers=me)).json()
    assert inbox["items"][0]["title"] == "Pago recibido"  # in their language
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE order_id = $1 AND channel = 'email'",
                             uuid.UUID(order["id"])) == 0
    assert not [m for m in mailbox.messages if m["To"] == "cy@example.com"]
    key = tokens.header("operator")
    assert (await api.get("/v1/notifications", headers=key)).status == 200  # an account has an inbox too


async def _async(value: bool) -> bool:
    return value
