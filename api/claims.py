"""Claims over HTTP: the customer claims a paid order, the shop processes the claim code."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from beanpay.api.guard import may, needs
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.idempotency import mutation
from beanpay.api.orders import SQL as ORDERS
from beanpay.api.orders import locked_order, may_see
from beanpay.api.routing import Routes
from beanpay.api.schemas import Claim, ClaimProcessed
from beanpay.api.state import pool, settings
from beanpay.engine import claiming
from beanpay.engine.claim_codes import normalize_claim_code
from beanpay.engine.rows import ClaimRow
from beanpay.errors import NotFound

routes = Routes()


def _claim(row: ClaimRow) -> Claim:
    return Claim(id=row.id, order_id=row.order_id, shop_id=row.shop_id, claim_code=row.claim_code, status=row.status,
                 claimed_at=row.claimed_at, expires_at=row.expires_at, processed_at=row.processed_at)


@routes.add("POST", "/v1/orders/{order_id}/claim", summary="Claim a paid order: returns its claim code",
            tag="claims", response=Claim, status=201,
            policy=needs("orders:write", "the customer who placed it, operators", customers=True),
            errors=(401, 403, 404, 409))
async def claim_order(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    async with mutation(request) as m:
        order = await locked_order(m.conn, request, order_id, shop=False)
        row = await claiming.claim(m.conn, order, ttl=dt.timedelta(seconds=settings(request).claim_ttl_seconds),
                                   actor=actor(request))
        return await m.respond(json(_claim(row), status=201))


@routes.add("POST", "/v1/claims/{code}/process", summary="Hand over a claimed order (pickup or to delivery)",
            tag="claims", response=ClaimProcessed,
            policy=needs("claims:redeem", "the shop's staff, managers and owners, operators"),
            errors=(401, 403, 404, 409))
async def process_claim(request: web.Request) -> web.Response:
    code = normalize_claim_code(request.match_info["code"])
    if code is None:
        raise NotFound("no such claim code")
    async with mutation(request) as m:
        claim_row, order_row = await claiming.process(m.conn, code, may_manage=lambda shop: may(request, shop),
                                                      actor=actor(request))
        return await m.respond(json(ClaimProcessed(_claim(claim_row), order_row.order_status)))


@routes.add("GET", "/v1/orders/{order_id}/claim", summary="The order's current claim", tag="claims",
            response=Claim, policy=needs("orders:read", "the customer who placed it, the shop's people, operators",
                                         customers=True),
            errors=(401, 403, 404))
async def get_claim(request: web.Request) -> web.Response:
    order_id = path_uuid(request, "order_id")
    async with pool(request).acquire() as conn:
        owner = await conn.fetchrow(ORDERS.owner, order_id)
        if owner is None or not may_see(request, owner["user_id"], owner["shop_id"]):
            raise NotFound("no such order", order_id=str(order_id))
        row = await claiming.latest(conn, order_id)
    if row is None:
        raise NotFound("the order has no claim")
    return json(_claim(row))
