"""The customer's refund page, `/refunds/claim/{token}` (the link in the refund's notification and in
the merchant's `refund.created` webhook): what is refunded, a form for the address to send it to, and
then where it stands. The form posts to the same step as POST /v1/refund-claims/{token}."""

from __future__ import annotations

from aiohttp import web

from beanpay.api.custody.refunds import _claimed, checked_invoice, claim_with, looks_like_invoice
from beanpay.api.guard import guarded, public
from beanpay.api.pages.render import formatter, html_errors, page
from beanpay.api.pages.views import SQL
from beanpay.api.state import pool
from beanpay.engine.transfers import service
from beanpay.errors import Conflict, InvalidInput

POLICY = public("whoever holds the refund link (the customer)")


async def _show(request: web.Request, *, status: int = 200, address: str = "", problem: str | None = None,
                notice: str | None = None) -> web.Response:
    refund_id = _claimed(request)
    async with pool(request).acquire() as conn:
        refund = await service.get(conn, refund_id)
        shop = await conn.fetchval(SQL.shop_name, refund.shop_id)
    return page(request, "refund.html", status=status, t=formatter(request), refund=refund, shop=shop,
                token=request.match_info["token"], address=address, problem=problem, notice=notice)


async def refund_page(request: web.Request) -> web.StreamResponse:
    return await _show(request)


async def refund_claim(request: web.Request) -> web.StreamResponse:
    refund_id = _claimed(request)
    address = str((await request.post()).get("address", "")).strip()
    try:
        invoice = await checked_invoice(request, refund_id, address) if looks_like_invoice(address) else None
        async with pool(request).transaction() as conn:
            await claim_with(conn, request, refund_id, address, invoice)
    except InvalidInput as exc:
        return await _show(request, status=422, address=address,
                           problem=next((e["message"] for e in exc.errors), exc.message))
    except Conflict as exc:
        return await _show(request, status=409, notice=exc.message)
    lang = request.query.get("lang")
    return web.Response(status=303, headers={"Location": request.path + (f"?lang={lang}" if lang else "")})


def install(app: web.Application) -> None:
    app.router.add_get("/refunds/claim/{token}", html_errors(guarded(POLICY, refund_page)))
    app.router.add_post("/refunds/claim/{token}", html_errors(guarded(POLICY, refund_claim)))
