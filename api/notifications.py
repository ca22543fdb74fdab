"""Notifications over HTTP: my in-app inbox (and marking read), my preferences per channel, my devices'
Web Push subscriptions, and the VAPID public key a browser subscribes with."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from aiohttp import web

from beanpay import queries
from beanpay.api.accounts import credentials
from beanpay.api.body import decode_body, decode_query
from beanpay.api.guard import needs, public, signed_in
from beanpay.api.http import json, path_uuid, who
from beanpay.api.notification_schemas import (
    Notification,
    NotificationPage,
    NotificationQuery,
    Preferences,
    PreferencesOut,
    PushSubscriptionIn,
    PushSubscriptionOut,
    VapidKey,
)
from beanpay.api.orders import SQL as ORDERS
from beanpay.api.routing import Routes
from beanpay.api.rows import encode_cursor, keyset, to_struct, to_structs
from beanpay.api.state import pool, settings
from beanpay.engine.notifications import vapid
from beanpay.engine.webhooks import egress
from beanpay.errors import Conflict, Forbidden, InvalidInput, NotFound
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import NotificationPayload

routes = Routes()
SQL = queries.load("beanpay.api", "notifications.sql")
YOU = signed_in("a signed-in customer or person, for their own notifications")


def _person(request: web.Request) -> uuid.UUID:
    c = who(request)
    if c.kind not in ("customer", "user") or c.id is None:
        raise Forbidden("notifications belong to people (customers or accounts), not API keys")
    return c.id


@routes.add("GET", "/v1/notifications", summary="My in-app notifications, newest first", tag="notifications",
            query=NotificationQuery, response=NotificationPage, policy=YOU, errors=(401, 403, 422))
async def list_notifications(request: web.Request) -> web.Response:
    user_id = _person(request)
    q = decode_query(request, NotificationQuery)
    after, after_id = keyset(q.cursor)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.inbox, user_id, after, after_id, q.unread, q.limit + 1)
    items = to_structs(rows[: q.limit], Notification)
    more = len(rows) > q.limit
    return json(NotificationPage(items, encode_cursor(items[-1].created_at, str(items[-1].id)) if more else None))


@routes.add("POST", "/v1/notifications/{notification_id}/read", summary="Mark one of my notifications read",
            tag="notifications", response=Notification, policy=YOU, errors=(401, 403, 404))
async def read_notification(request: web.Request) -> web.Response:
    user_id = _person(request)
    notification_id = path_uuid(request, "notification_id")
    async with pool(request).transaction() as conn:
        marked = await conn.fetchrow(SQL.mark_read, notification_id, user_id)
        if marked is not None:  # the first read only: one notification.read per notification
            await emit_many(conn, [Event(catalog.NOTIFICATION_READ, marked["id"], NotificationPayload(
                marked["id"], marked["event_id"], marked["channel"], marked["user_id"], marked["order_id"],
                marked["status"]))])
        row = await conn.fetchrow(SQL.one, notification_id, user_id)
    if row is None:
        raise NotFound("no such notification", notification_id=str(notification_id))
    return json(to_struct(row, Notification))


@routes.add("GET", "/v1/users/me/notification-preferences", summary="How I want to be told", tag="notifications",
            response=PreferencesOut, policy=YOU, errors=(401, 403))
async def get_preferences(request: web.Request) -> web.Response:
    user_id = _person(request)
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(SQL.preferences, user_id)
    if row is None:
        return json(PreferencesOut(None, "en", True, True, True, None))
    return json(to_struct(row, PreferencesOut))


@routes.add("PUT", "/v1/users/me/notification-preferences", summary="Choose my channels, language and email",
            tag="notifications", body=Preferences, response=PreferencesOut, policy=YOU, errors=(400, 401, 403, 422))
async def put_preferences(request: web.Request) -> web.Response:
    user_id = _person(request)
    body = await decode_body(request, Preferences)
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(SQL.save_preferences, user_id, body.email, body.language, body.email_enabled,
                                  body.push_enabled, body.in_app_enabled)
    return json(to_struct(row, PreferencesOut))


@routes.add("POST", "/v1/users/me/push-subscriptions", summary="Subscribe this device to Web Push",
            tag="notifications", body=PushSubscriptionIn, response=PushSubscriptionOut, status=201, policy=YOU,
            errors=(400, 401, 403, 409, 422))
async def subscribe_push(request: web.Request) -> web.Response:
    return await _subscribe(request, _person(request))


@routes.add("POST", "/v1/orders/{order_id}/push-subscriptions",
            summary="Subscribe this device to Web Push about one order (from its checkout page)",
            tag="notifications", body=PushSubscriptionIn, response=PushSubscriptionOut, status=201,
            policy=needs("orders:read", "whoever holds the order's checkout token, the customer who placed it",
                         customers=True, guests=True),
            errors=(400, 401, 404, 409, 422), headers=("X-Checkout-Token",))
async def subscribe_order_push(request: web.Request) -> web.Response:
    """The device is told about this one order: the checkout token opens that order only, never the
    account of the customer who placed it (their other orders, their refund links)."""
    order_id = path_uuid(request, "order_id")
    capability = request.headers.get("X-Checkout-Token")
    opened = capability is not None and credentials.checkout_order(capability, settings(request).jwt_secret or "")
    async with pool(request).acquire() as conn:
        owner = await conn.fetchval(ORDERS.owner, order_id)
    c = who(request)
    if owner is None or (opened != order_id and not (c.kind == "customer" and c.id == owner)):
        raise NotFound("no such order", order_id=str(order_id))
    body = await _device(request)
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(SQL.subscribe_order, uuid.uuid4(), order_id, body.endpoint, body.keys.p256dh,
                                  body.keys.auth)
    if row is None:
        raise Conflict("this device already follows the order with other keys", field="endpoint")
    return json(to_struct(row, PushSubscriptionOut), status=201)


async def _subscribe(request: web.Request, user_id: uuid.UUID) -> web.Response:
    body = await _device(request)
    async with pool(request).acquire() as conn:
        row = await conn.fetchrow(SQL.subscribe, uuid.uuid4(), user_id, body.endpoint, body.keys.p256dh,
                                  body.keys.auth)
    if row is None:  # someone else's device: moving it would take their notifications away
        raise Conflict("this device is subscribed for someone else; it must unsubscribe there first",
                       field="endpoint")
    return json(to_struct(row, PushSubscriptionOut), status=201)


async def _device(request: web.Request) -> PushSubscriptionIn:
    """The browser's subscription, its endpoint checked: a push service's https URL on a public host."""
    body = await decode_body(request, PushSubscriptionIn)
    url = urlsplit(body.endpoint)
    conf = settings(request)
    local = conf.webhook_allow_private
    problem = None
    if url.scheme != "https" and not (local and url.scheme == "http"):
        problem = "must be an https URL (the push service's)"
    elif not url.hostname or (not local and (problem := egress.host_problem(url.hostname))):
        problem = problem or "has no host"
    if problem:
        raise InvalidInput("bad push endpoint", [{"field": "endpoint", "message": problem}])
    return body


@routes.add("DELETE", "/v1/users/me/push-subscriptions/{subscription_id}", summary="Unsubscribe a device",
            tag="notifications", status=204, policy=YOU, errors=(401, 403, 404))
async def unsubscribe_push(request: web.Request) -> web.Response:
    user_id = _person(request)
    subscription_id = path_uuid(request, "subscription_id")
    async with pool(request).acquire() as conn:
        if await conn.fetchval(SQL.unsubscribe, subscription_id, user_id) is None:
            raise NotFound("no such push subscription of yours", subscription_id=str(subscription_id))
    return web.Response(status=204)


@routes.add("GET", "/v1/push/vapid-public-key", summary="The key browsers subscribe to Web Push with",
            tag="notifications", response=VapidKey, policy=public())
async def get_vapid_key(request: web.Request) -> web.Response:
    private = settings(request).vapid_private_key
    return json(VapidKey(vapid.public_key(private) if private else None))
