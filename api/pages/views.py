"""What a checkout or receipt page shows, read from the database in two statements. The page and its
live stream render from the same view, so a reload and an update can never disagree."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import asyncpg

from beanpay import capability, queries
from beanpay.api.accounts import credentials
from beanpay.api.orders import load
from beanpay.api.pages.stages import Progress, progress
from beanpay.api.schemas import Order
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine.assets import payable_assets
from beanpay.engine.payment_uri import payment_uri
from beanpay.errors import Gone, NotFound

SQL = queries.load("beanpay.api", "pages.sql")
INVOICE_CHECKOUT = "invoice-checkout"  # the purpose of an invoice's checkout token (api.invoices)
RECEIPT = "receipt"  # a receipt link opens the receipt only: it may be forwarded (expenses) without the order


@dataclass(frozen=True)
class Opened:
    """What a checkout link opens: an order, or an invoice whose asset is not picked yet."""

    order_id: uuid.UUID | None
    invoice_id: uuid.UUID | None


def open_checkout(token: str, secret: str) -> Opened:
    order = credentials.checkout_order(token, secret)
    if order is not None:
        return Opened(order, None)
    invoice = capability.subject(INVOICE_CHECKOUT, token, secret)
    if invoice is not None:
        return Opened(None, invoice)
    raise NotFound("This checkout link is not valid. Check that you copied all of it.")


def receipt_token(order_id: uuid.UUID, secret: str) -> str:
    return capability.token(RECEIPT, order_id, secret)


def open_receipt(token: str, secret: str) -> uuid.UUID:
    found = capability.subject(RECEIPT, token, secret)
    if found is None:
        raise NotFound("This receipt link is not valid. Check that you copied all of it.")
    return found


def required_confirmations(settings: Settings, chain: str, speed: str | None) -> int:
    if speed == "medium":
        return 1
    if chain == "btc":
        return settings.btc_confirmations
    return next((c.confirmations for c in settings.evm_chains or [] if c.name == chain), 1)


@dataclass(frozen=True)
class OrderView:
    order: Order
    context: asyncpg.Record
    progress: Progress
    uri: str  # what the QR and the wallet link hold: the amount still due, at the address

    @property
    def claimable(self) -> bool:
        return self.order.order_type != "invoice" and self.order.status in ("confirmed", "preparing", "ready")


async def order_view(conn: Connection, settings: Settings, order_id: uuid.UUID, *, now: dt.datetime) -> OrderView:
    order = await load(conn, order_id)
    if now - order.created_at > dt.timedelta(days=settings.checkout_link_days):
        raise Gone("This link has expired. Ask the shop if you need the order again.")
    context = await conn.fetchrow(SQL.checkout_context, order_id)
    assert context is not None  # the order was just read, and orders are never deleted
    p = order.payment
    done = progress(order.status, p.status, amount=int(p.amount), received=int(p.amount_received),
                    confirmations=p.confirmations,
                    required=required_confirmations(settings, p.chain, context["speed"]))
    asset = payable_assets(settings).get((p.chain, p.asset))
    due = done.remaining or int(p.amount)
    uri = payment_uri(asset, p.address, due) if asset is not None else p.payment_uri
    if p.lightning is not None and p.lightning.state == "open" and int(p.amount_received) == 0:
        uri = p.lightning.unified_uri  # one QR for both rails while the whole amount is due
    return OrderView(order, context, done, uri)


async def invoice_context(conn: Connection, settings: Settings, invoice_id: uuid.UUID,
                          *, now: dt.datetime) -> asyncpg.Record:
    row = await conn.fetchrow(SQL.invoice_context, invoice_id)
    if row is None:
        raise NotFound("This checkout link is not valid. Check that you copied all of it.")
    if now - row["created_at"] > dt.timedelta(days=settings.checkout_link_days):
        raise Gone("This link has expired. Ask the shop if you need the order again.")
    return row
