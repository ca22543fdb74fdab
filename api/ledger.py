"""A shop's balances per asset and its ledger history (base units as strings)."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from beanpay.api.body import decode_query
from beanpay.api.guard import allow, needs
from beanpay.api.http import json, path_uuid
from beanpay.api.routing import Routes
from beanpay.api.schemas import Balance, Balances, LedgerEntry, LedgerPage, LedgerQuery
from beanpay.api.state import pool, settings
from beanpay.engine import ledger
from beanpay.engine.assets import payable_assets
from beanpay.engine.payment_uri import coins

routes = Routes()
LEDGER = needs("ledger:read", "the shop's owners and managers, operators")


@routes.add("GET", "/v1/shops/{shop_id}/balances", summary="What the shop is owed, per chain and asset",
            tag="ledger", response=Balances, policy=LEDGER, errors=(401, 403))
async def get_balances(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    assets = payable_assets(settings(request))
    async with pool(request).acquire() as conn:
        rows = await ledger.balances(conn, shop_id)
    return json(Balances(shop_id, [Balance(b.chain, b.asset, str(b.balance),
                                           a.decimals if (a := assets.get((b.chain, b.asset))) else None,
                                           b.custodial) for b in rows]))


@routes.add("GET", "/v1/shops/{shop_id}/ledger", summary="The shop's ledger entries, newest first",
            tag="ledger", query=LedgerQuery, response=LedgerPage, policy=LEDGER,
            errors=(401, 403, 422))
async def get_ledger(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    q = decode_query(request, LedgerQuery)
    async with pool(request).acquire() as conn:
        rows = await ledger.history(conn, shop_id, q.before or 2**63 - 1, q.limit + 1)
    items = [LedgerEntry(r.id, r.entry_group, r.chain, r.asset, str(r.amount), r.kind, r.payment_id, r.memo,
                         r.created_at, r.custodial, r.transfer_id) for r in rows[: q.limit]]
    return json(LedgerPage(items, items[-1].id if len(rows) > q.limit else None))


EXPORT_PAGE = 1000


@routes.add("GET", "/v1/shops/{shop_id}/ledger.csv", summary="The shop's whole ledger as CSV, newest first",
            tag="ledger", response=None, policy=LEDGER, errors=(401, 403))
async def export_ledger(request: web.Request) -> web.StreamResponse:
    """Every entry, streamed a page at a time (no size limit); amounts in base units and in whole coins."""
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    assets = payable_assets(settings(request))
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="ledger-{shop_id}.csv"'})
    await response.prepare(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "created_at", "chain", "asset", "amount", "amount_coins", "kind", "custodial",
                     "payment_id", "transfer_id", "entry_group", "memo"])
    before = 2**63 - 1
    while True:
        async with pool(request).acquire() as conn:
            rows = await ledger.history(conn, shop_id, before, EXPORT_PAGE)
        for r in rows:
            found = assets.get((r.chain, r.asset))
            whole = coins(r.amount, found.decimals) if found else ""
            writer.writerow([r.id, r.created_at.isoformat(), r.chain, r.asset, r.amount, whole, r.kind,
                             str(r.custodial).lower(), r.payment_id or "", r.transfer_id or "", r.entry_group,
                             r.memo or ""])
        await response.write(out.getvalue().encode())
        out.seek(0)
        out.truncate()
        if len(rows) < EXPORT_PAGE:
            break
        before = rows[-1].id
    await response.write_eof()
    return response
