"""Merchant webhook endpoints: register (the signing secret is shown once), list, change, delete,
see the delivery log, and ask for a delivery again. An endpoint marked `refund_claims` is sent refunds'
claim tokens (computed at delivery, never stored in the log); only a principal holding refunds:create
marks one, or changes where a marked one points and what it receives."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from msgspec import UNSET

from beanpay import audit, queries
from beanpay.api.body import check_version, decode_body, decode_query
from beanpay.api.guard import allow, needs
from beanpay.api.http import actor, json, path_uuid, who
from beanpay.api.idempotency import mutation
from beanpay.api.routing import Routes
from beanpay.api.rows import keyset, page_of, to_struct
from beanpay.api.schemas import Delivery, DeliveryQuery, Page, Webhook, WebhookCreate, WebhookCreated, WebhookPatch
from beanpay.api.state import pool, settings
from beanpay.db import Connection
from beanpay.engine.webhooks import egress
from beanpay.engine.webhooks.fanout import DELIVERABLE
from beanpay.engine.webhooks.sender import redeliver
from beanpay.engine.webhooks.signing import new_secret
from beanpay.errors import Forbidden, InvalidInput, NotFound

routes = Routes()
SQL = queries.load("beanpay.api", "webhooks.sql")
MANAGE = needs("webhooks:manage", "the shop's owners and managers, operators")
SHOWN_ONCE = "[shown once, when the endpoint was created]"


def _check(request: web.Request, url: str | None, event_types: list[str] | None) -> None:
    problems = []
    if url is not None:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            _ = parts.port  # out of range raises
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket, port 99999999
            raise InvalidInput("invalid webhook endpoint", [{"field": "url", "message": str(exc)}]) from None
        if not host:
            problems.append({"field": "url", "message": "no host"})
        elif not settings(request).webhook_allow_private and (why := egress.host_problem(host)):
            problems.append({"field": "url", "message": why})
    for i, t in enumerate(event_types or []):
        if t != "*" and t not in DELIVERABLE:
            problems.append({"field": f"event_types[{i}]", "message": f"unknown event type {t!r}"})
    if problems:
        raise InvalidInput("invalid webhook endpoint", problems)


def _may_carry_claims(request: web.Request, shop_id: uuid.UUID) -> None:
    """Refunds' claim tokens (whoever holds one says where the refund goes) go only to endpoints set up
    by someone who may issue refunds at the shop."""
    if not who(request).may("refunds:create", shop_id):
        raise Forbidden("an endpoint carries refund claim links only if set up by someone holding refunds:create",
                        field="refund_claims")


def _reaches_claims(before: Any, url: str, event_types: list[str], enabled: bool, refund_claims: bool) -> bool:
    """Whether a change sends refunds' claim tokens somewhere (or for something) they did not go before."""
    return refund_claims and (not before["refund_claims"] or url != before["url"]
                              or set(event_types) != set(before["event_types"]) or (enabled and not before["enabled"]))


async def _fetch(conn: Connection, shop_id: uuid.UUID, webhook_id: uuid.UUID, lock: bool = False) -> Any:
    row = await conn.fetchrow(SQL.lock if lock else SQL.fetch, webhook_id, shop_id)
    if row is None:
        raise NotFound("no such webhook endpoint")
    return row


@routes.add("POST", "/v1/shops/{shop_id}/webhooks", summary="Register a webhook endpoint (secret shown once)",
            tag="webhooks", body=WebhookCreate, response=WebhookCreated, status=201,
            policy=MANAGE,
            errors=(400, 401, 403, 404, 409, 422))
async def create_webhook(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    body = await decode_body(request, WebhookCreate)
    _check(request, body.url, body.event_types)
    if body.refund_claims:
        _may_carry_claims(request, shop_id)
    secret = new_secret()
    async with mutation(request) as m:
        row = await m.conn.fetchrow(SQL.insert, shop_id, body.url, sorted(set(body.event_types)), secret,
                                    body.description, body.refund_claims)
        assert row is not None  # INSERT ... RETURNING
        await audit.record(m.conn, actor(request), "webhook.create", "webhook", row["id"],
                           after={"url": body.url, "event_types": body.event_types,
                                  "refund_claims": body.refund_claims})  # never the secret
        hook = to_struct(row, Webhook)
        fields = {f: getattr(hook, f) for f in Webhook.__struct_fields__}
        # a retry is answered without the secret: stored answers keep nothing that is shown once
        return await m.respond(json(WebhookCreated(**fields, secret=secret), status=201),
                               stored=json(WebhookCreated(**fields, secret=SHOWN_ONCE), status=201).body)  # type: ignore[arg-type]


@routes.add("GET", "/v1/shops/{shop_id}/webhooks", summary="The shop's webhook endpoints", tag="webhooks",
            response=list[Webhook], policy=MANAGE, errors=(401, 403))
async def list_webhooks(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    async with pool(request).acquire() as conn:
        rows = await conn.fetch(SQL.of_shop, shop_id)
    return json([to_struct(r, Webhook) for r in rows])


@routes.add("PATCH", "/v1/shops/{shop_id}/webhooks/{webhook_id}", summary="Change a webhook endpoint",
            tag="webhooks", body=WebhookPatch, response=Webhook, policy=MANAGE,
            errors=(400, 401, 403, 404, 409, 422))
async def update_webhook(request: web.Request) -> web.Response:
    shop_id, webhook_id = path_uuid(request, "shop_id"), path_uuid(request, "webhook_id")
    allow(request, shop_id)
    patch = await decode_body(request, WebhookPatch)
    _check(request, None if patch.url is UNSET else patch.url,
           None if patch.event_types is UNSET else patch.event_types)
    async with pool(request).transaction() as conn:
        before = await _fetch(conn, shop_id, webhook_id, lock=True)
        check_version(patch, before["version"], "webhook endpoint")

        def pick(name: str) -> Any:
            value = getattr(patch, name)
            return before[name] if value is UNSET else value

        if _reaches_claims(before, pick("url"), pick("event_types"), pick("enabled"), pick("refund_claims")):
            _may_carry_claims(request, shop_id)
        row = await conn.fetchrow(SQL.update, webhook_id, pick("url"), sorted(set(pick("event_types"))),
                                  pick("description"), pick("enabled"), pick("refund_claims"))
        assert row is not None  # the row is locked
        await audit.record(conn, actor(request), "webhook.update", "webhook", webhook_id,
                           before={"url": before["url"], "enabled": before["enabled"],
                                   "refund_claims": before["refund_claims"]},
                           after={"url": row["url"], "enabled": row["enabled"], "refund_claims": row["refund_claims"]})
    return json(to_struct(row, Webhook))


@routes.add("DELETE", "/v1/shops/{shop_id}/webhooks/{webhook_id}", summary="Delete a webhook endpoint",
            tag="webhooks", status=204, policy=MANAGE, errors=(401, 403, 404))
async def delete_webhook(request: web.Request) -> web.Response:
    shop_id, webhook_id = path_uuid(request, "shop_id"), path_uuid(request, "webhook_id")
    allow(request, shop_id)
    async with pool(request).transaction() as conn:
        before = await _fetch(conn, shop_id, webhook_id, lock=True)
        await conn.execute(SQL.delete, webhook_id)
        await audit.record(conn, actor(request), "webhook.delete", "webhook", webhook_id, before={"url": before["url"]})
    return web.Response(status=204)


@routes.add("GET", "/v1/shops/{shop_id}/webhooks/{webhook_id}/deliveries", summary="The endpoint's delivery log",
            tag="webhooks", query=DeliveryQuery, response=Page[Delivery], policy=MANAGE,
            errors=(401, 403, 404, 422))
async def list_deliveries(request: web.Request) -> web.Response:
    shop_id, webhook_id = path_uuid(request, "shop_id"), path_uuid(request, "webhook_id")
    allow(request, shop_id)
    q = decode_query(request, DeliveryQuery)
    after, after_id = keyset(q.cursor)
    async with pool(request).acquire() as conn:
        await _fetch(conn, shop_id, webhook_id)
        rows = await conn.fetch(SQL.deliveries, webhook_id, q.limit + 1, after, after_id, q.status)
    return json(page_of(rows, q.limit, Delivery))


@routes.add("POST", "/v1/shops/{shop_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            summary="Send a delivery again (any state)", tag="webhooks", status=202,
            policy=MANAGE, errors=(401, 403, 404))
async def redeliver_delivery(request: web.Request) -> web.Response:
    shop_id, webhook_id = path_uuid(request, "shop_id"), path_uuid(request, "webhook_id")
    delivery_id = path_uuid(request, "delivery_id")
    allow(request, shop_id)
    async with mutation(request) as m:
        await _fetch(m.conn, shop_id, webhook_id)
        if not await m.conn.fetchval(SQL.delivery_of, delivery_id, webhook_id) or not await redeliver(m.conn,
                                                                                                    [delivery_id]):
            raise NotFound("no such delivery")
        return await m.respond(web.Response(status=202, body=b"", content_type="application/json"))
