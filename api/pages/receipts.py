"""Receipts, `/receipts/{token}` (HTML) and `/receipts/{token}/pdf`: what was bought, at what rate, paid
by which transactions, and what was refunded. Only a paid order has one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
from aiohttp import web
from fpdf import FPDF

from beanpay.api.guard import guarded, public
from beanpay.api.pages.locale import Formatter
from beanpay.api.pages.render import formatter, html_errors, page, secure
from beanpay.api.pages.stages import PAID_ORDERS
from beanpay.api.pages.views import SQL, OrderView, open_receipt, order_view
from beanpay.api.state import pool, settings
from beanpay.config import Settings
from beanpay.errors import NotFound

POLICY = public("whoever holds the receipt link")


@dataclass(frozen=True)
class Receipt:
    view: OrderView
    transactions: list[asyncpg.Record]
    refunds: list[asyncpg.Record]

    def explorer(self, conf: Settings, chain: str, txid: str) -> str | None:
        template = conf.explorer_tx_urls.get(chain)
        return template.replace("{txid}", txid) if template else None


async def _receipt(request: web.Request) -> Receipt:
    order_id = open_receipt(request.match_info["token"], settings(request).jwt_secret or "")
    async with pool(request).acquire() as conn:
        view = await order_view(conn, settings(request), order_id, now=dt.datetime.now(dt.UTC))
        if view.order.status not in PAID_ORDERS:
            raise NotFound("There is no receipt for this order: it has not been paid.")
        txs = await conn.fetch(SQL.payments_seen, order_id)
        refunds = await conn.fetch(SQL.refunds_of, order_id)
    return Receipt(view, list(txs), list(refunds))


def _lines(r: Receipt, t: Formatter) -> list[tuple[str, str]]:
    o = r.view.order
    out = []
    for item in o.items:
        extras = "; ".join(f"{k}: {', '.join(v)}" for k, v in item.customizations.items())
        label = f"{item.quantity} x {item.product_name}" + (f" ({extras})" if extras else "")
        out.append((label, t.fiat(item.final_price * item.quantity, o.currency)))
    if not o.items:  # an invoice
        label = r.view.context["order_ref"] or t.text("Invoice")
        out.append((label, t.fiat(o.total_amount, o.currency)))
    return out


async def receipt_html(request: web.Request) -> web.StreamResponse:
    r = await _receipt(request)
    t = formatter(request)
    conf = settings(request)
    return page(request, "receipt.html", t=t, receipt=r, order=r.view.order, payment=r.view.order.payment,
                lines=_lines(r, t), explorer=lambda chain, txid: r.explorer(conf, chain, txid),
                token=request.match_info["token"])


def _pdf(r: Receipt, t: Formatter) -> bytes:
    """A one-page PDF of the same receipt. fpdf2's core fonts are Latin-1: text outside it is replaced."""
    o, p = r.view.order, r.view.order.payment

    def latin(text: str) -> str:
        return text.encode("latin-1", "replace").decode("latin-1")

    doc = FPDF(format=(148, 210))  # A5, in mm
    doc.set_auto_page_break(True, margin=12)
    doc.add_page()
    doc.set_title(latin(f"{t.text('Receipt')} {o.id}"))
    doc.set_font("helvetica", "B", 16)
    doc.cell(0, 9, latin(r.view.context["shop_name"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("helvetica", "", 9)
    doc.cell(0, 5, latin(r.view.context["shop_address"]), new_x="LMARGIN", new_y="NEXT")
    doc.cell(0, 5, latin(f"{t.text('Order')} {o.id}"), new_x="LMARGIN", new_y="NEXT")
    doc.cell(0, 5, latin(t.when(p.confirmed_at or o.updated_at)), new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    doc.set_font("helvetica", "", 10)
    for label, amount in _lines(r, t):
        doc.cell(95, 6, latin(label))
        doc.cell(0, 6, latin(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("helvetica", "B", 11)
    doc.cell(95, 8, latin(t.text("Total")))
    doc.cell(0, 8, latin(t.fiat(o.total_amount, o.currency)), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("helvetica", "", 9)
    rows = [(t.text("Paid"), f"{t.coins(p.amount_received, p.decimals)} {p.asset}"),
            (t.text("Rate"), f"1 {p.asset} = {t.fiat(Decimal(p.rate), p.fiat_currency)}")]
    for label, value in rows:
        doc.cell(40, 5, latin(label))
        doc.cell(0, 5, latin(value), new_x="LMARGIN", new_y="NEXT")
    doc.ln(2)
    doc.cell(0, 5, latin(t.text("Transactions")), new_x="LMARGIN", new_y="NEXT")
    for tx in r.transactions:
        doc.multi_cell(0, 4, latin(f"{tx['txid']}  {t.coins(tx['amount'], p.decimals)} {p.asset}"),
                       new_x="LMARGIN", new_y="NEXT")
    if r.refunds:
        doc.ln(2)
        doc.cell(0, 5, latin(t.text("Refunds")), new_x="LMARGIN", new_y="NEXT")
        for f in r.refunds:
            amount = t.coins(f["amount"], f["decimals"]) if f["amount"] is not None else "-"
            state = t.text(f["status"].replace("_", " "))
            doc.multi_cell(0, 4, latin(f"{amount} {f['asset']}  {state}  {f['txid'] or ''}"),
                           new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


async def receipt_pdf(request: web.Request) -> web.StreamResponse:
    r = await _receipt(request)
    body = _pdf(r, formatter(request))
    response = web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="receipt-{r.view.order.id}.pdf"'})
    return secure(response)


def install(app: web.Application) -> None:
    app.router.add_get("/receipts/{token}", html_errors(guarded(POLICY, receipt_html)))
    app.router.add_get("/receipts/{token}/pdf", html_errors(guarded(POLICY, receipt_pdf)))
