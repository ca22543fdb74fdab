"""The hosted checkout, `/pay/{token}`: the order (or invoice) with what to pay and where, live.

The token is the order's (or invoice's) checkout capability, so the page needs no account and shows
nothing else. Without JavaScript the page refreshes itself; with it, `/pay/{token}/events` streams
the live part re-rendered whenever the feed says the order moved. Picking an invoice's asset and
claiming a paid order are plain form posts, so both work without a script too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from urllib.parse import urlencode

from aiohttp import web

from beanpay.api.feed import FEED
from beanpay.api.guard import guarded, public
from beanpay.api.http import Handler, actor
from beanpay.api.orders import _asset, _rate
from beanpay.api.pages.locale import Formatter
from beanpay.api.pages.qr import svg
from beanpay.api.pages.render import formatter, html_errors, page, render, secure
from beanpay.api.pages.views import OrderView, invoice_context, open_checkout, order_view, receipt_token
from beanpay.api.state import BTC_ACCOUNT, pool, settings
from beanpay.api.stream_limits import client_address
from beanpay.engine import claiming, invoices
from beanpay.engine.addresses import BITCOIN
from beanpay.engine.lightning import invoices as lightning_invoices
from beanpay.engine.lightning.invoices import LIGHTNING
from beanpay.engine.notifications import vapid
from beanpay.engine.orders import lock_order
from beanpay.errors import Conflict, InvalidInput, NotFound, Unavailable
from beanpay.listen import wait_event

HEARTBEAT_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
REREAD_SECONDS = 60.0  # a stream reads its order at least this often, should the feed have missed one
POLICY = public("whoever holds the checkout link (the customer)")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _secret(request: web.Request) -> str:
    return settings(request).jwt_secret or ""


def live_context(request: web.Request, view: OrderView, token: str, t: Formatter) -> dict[str, object]:
    """What the live part of the page renders from (the page and its stream share it)."""
    p, o = view.progress, view.order
    ln = o.payment.lightning
    lightning = ln if ln is not None and ln.state == "open" else None
    return {
        "view": view, "order": o, "payment": o.payment, "progress": p, "token": token,
        "qr": svg(view.uri, title=t.text("Payment QR code")) if p.payable else None,
        "claim_qr": svg(view.context["claim_code"], title=t.text("Claim code QR"))
        if view.context["claim_status"] == "active" else None,
        "receipt": receipt_token(o.id, _secret(request)) if p.stage in ("paid", "overpaid") else None,
        "evm_chain_id": hex(o.payment.chain_id) if o.payment.chain_id else None,
        "lightning": lightning if p.payable and int(o.payment.amount_received) == 0 else None,
        # a Bitcoin payment still waiting for the whole amount may be paid over Lightning (on the customer's tap)
        "lightning_offer": p.stage == "awaiting" and lightning is None and o.payment.chain == BITCOIN,
        "lightning_refused": request.query.get("lightning") == "unavailable",
    }


async def checkout(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    opened = open_checkout(token, _secret(request))
    t = formatter(request)
    async with pool(request).acquire() as conn:
        if opened.invoice_id is not None:
            inv = await invoice_context(conn, settings(request), opened.invoice_id, now=_now())
            if inv["order_id"] is None:  # the customer picks the asset first
                status = 410 if inv["status"] in ("expired", "cancelled") else 200
                return page(request, "pick.html", status=status, t=t, invoice=inv, token=token,
                            assets=[a.split("/", 1) for a in inv["assets"]])
            order_id = inv["order_id"]
        else:
            assert opened.order_id is not None
            order_id = opened.order_id
        view = await order_view(conn, settings(request), order_id, now=_now())
    status = 410 if view.progress.stage in ("expired", "cancelled") else 200  # nothing left to pay here
    private = settings(request).vapid_private_key
    return page(request, "checkout.html", status=status, t=t, vapid=vapid.public_key(private) if private else None,
                **live_context(request, view, token, t))


async def pick_asset(request: web.Request) -> web.StreamResponse:
    """The asset picker's form: the quote is locked and the address made, as POST /v1/invoices/{id}/payment."""
    token = request.match_info["token"]
    opened = open_checkout(token, _secret(request))
    if opened.invoice_id is None:
        raise NotFound("This link is for an order whose asset is already chosen.")
    form = await request.post()
    chain, _, symbol = str(form.get("asset", "")).partition("/")
    async with pool(request).acquire() as conn:
        inv = await invoice_context(conn, settings(request), opened.invoice_id, now=_now())
    if f"{chain}/{symbol}" not in inv["assets"]:
        raise InvalidInput("Choose one of the offered ways to pay.", [{"field": "asset", "message": "not offered"}])
    asset = _asset(request, chain, symbol)
    async with pool(request).transaction() as conn:
        try:
            order_id = await invoices.pick(
                conn, settings(request), opened.invoice_id, asset, rate_for=lambda fiat: _rate(request, asset, fiat),
                btc_account=request.app[BTC_ACCOUNT], user_id=uuid.uuid4(), actor=actor(request),
                offered_as=f"{chain}/{symbol}")
        except Conflict:
            return _back(request, token)  # picked already (a second tab, a double tap): show what was picked
    if chain == LIGHTNING:  # after the commit: the node is never asked inside a transaction
        return await _with_invoice(request, token, order_id)
    return _back(request, token)


async def pay_with_lightning(request: web.Request) -> web.StreamResponse:
    """The customer picks Lightning: an invoice is issued for the payment (as POST
    /v1/orders/{id}/lightning-invoice). If none can be, the page says so and stays on chain."""
    token = request.match_info["token"]
    opened = open_checkout(token, _secret(request))
    order_id = opened.order_id
    if order_id is None:
        async with pool(request).acquire() as conn:
            assert opened.invoice_id is not None
            order_id = (await invoice_context(conn, settings(request), opened.invoice_id, now=_now()))["order_id"]
    if order_id is None:
        raise NotFound("Choose how to pay first.")
    return await _with_invoice(request, token, order_id)


async def _with_invoice(request: web.Request, token: str, order_id: uuid.UUID) -> web.Response:
    """The page again, with the payment's Lightning invoice issued, or saying why there is none."""
    try:
        await lightning_invoices.issue(pool(request), settings(request), order_id, actor(request))
    except (Unavailable, Conflict):
        return _back(request, token, lightning="unavailable")
    return _back(request, token)


async def claim(request: web.Request) -> web.StreamResponse:
    """The paid order's claim code, issued on the customer's tap (its clock starts then)."""
    token = request.match_info["token"]
    opened = open_checkout(token, _secret(request))
    async with pool(request).acquire() as conn:
        order_id = opened.order_id
        if order_id is None:
            assert opened.invoice_id is not None
            order_id = (await invoice_context(conn, settings(request), opened.invoice_id, now=_now()))["order_id"]
        if order_id is None:
            raise NotFound("Nothing has been paid on this link yet.")
    async with pool(request).transaction() as conn:
        order = await lock_order(conn, order_id)
        with contextlib.suppress(Conflict):  # claimed already: the page shows the live claim
            await claiming.claim(conn, order, ttl=dt.timedelta(seconds=settings(request).claim_ttl_seconds),
                                 actor=actor(request))
    return _back(request, token)


def _back(request: web.Request, token: str, **query: str) -> web.Response:
    """After a form post, the page again (303: a reload does not post twice)."""
    lang = request.query.get("lang")
    params = urlencode({**({"lang": lang} if lang else {}), **query})
    return web.Response(status=303, headers={"Location": f"/pay/{token}" + (f"?{params}" if params else "")})


def _event(name: str, html: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the live part of the page, sent again each time it would look different.
    Capped per client address and per checkout (api.stream_limits): a 429 beyond."""
    token = request.match_info["token"]
    opened = open_checkout(token, _secret(request))
    t = formatter(request)
    conf = settings(request)
    async with pool(request).acquire() as conn:
        order_id = opened.order_id
        if order_id is None:
            assert opened.invoice_id is not None
            order_id = (await invoice_context(conn, conf, opened.invoice_id, now=_now()))["order_id"]
    feed = request.app[FEED]
    holder = f"order:{order_id}" if order_id is not None else f"invoice:{opened.invoice_id}"
    with feed.slots.hold(client_address(request), holder):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
        secure(response)
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the customer went away: the slot is free again
            if order_id is None:  # an invoice's asset picker: nothing streams until the customer picks
                await response.write(b"event: done\ndata: \n\n")
                return response
            await _stream(request, response, order_id, token, t)
    return response


async def _stream(request: web.Request, response: web.StreamResponse, order_id: uuid.UUID, token: str,
                  t: Formatter) -> None:
    conf = settings(request)
    await response.write(b"retry: 3000\n\n")
    last = ""
    with request.app[FEED].watch(order_id) as w:
        while True:
            w.wake.clear()
            async with pool(request).acquire() as conn:
                view = await order_view(conn, conf, order_id, now=_now())
            w.chain, w.confirming = view.order.payment.chain, view.progress.stage in ("seen", "confirming")
            html = render("live.html", t, **live_context(request, view, token, t))
            if html != last:
                await response.write(_event("live", html))
                last = html
            if view.progress.stage in ("expired", "cancelled") or view.order.status == "completed":
                await response.write(_event("done", ""))
                return
            waited = 0.0
            while not w.wake.is_set() and waited < REREAD_SECONDS:
                await wait_event(w.wake, HEARTBEAT_SECONDS)
                waited += HEARTBEAT_SECONDS
                if not w.wake.is_set():
                    await response.write(b": keep-alive\n\n")


def _page_route(handler: Handler) -> Handler:
    return html_errors(guarded(POLICY, handler))


def install(app: web.Application) -> None:
    app.router.add_get("/pay/{token}", _page_route(checkout))
    app.router.add_post("/pay/{token}/asset", _page_route(pick_asset))
    app.router.add_post("/pay/{token}/lightning", _page_route(pay_with_lightning))
    app.router.add_post("/pay/{token}/claim", _page_route(claim))
    app.router.add_get("/pay/{token}/events", _page_route(events))
