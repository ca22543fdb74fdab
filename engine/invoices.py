"""Invoices: a fiat amount and the assets it may be paid in. The quote and the address come when the
customer picks an asset, not before: then an order of type `invoice` (without items) and its payment are
written by the same statement that places a coffee order, so every payment takes one path (settlement,
expiry, refunds, sweeps, events and webhooks alike). A coffee order owns its invoice from the start."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec

from beanpay import audit, queries, tracing
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.config import Settings
from beanpay.db import Connection, fetch_as, fetch_one
from beanpay.engine import addresses, orders, wallets
from beanpay.engine.addresses import BITCOIN, evm_forwarder
from beanpay.engine.assets import Asset
from beanpay.engine.payment_uri import payment_uri
from beanpay.engine.prices.providers import Rate
from beanpay.engine.quote import crypto_amount
from beanpay.engine.rows import OrderRow, PaymentRow
from beanpay.errors import Conflict, Gone, InvalidInput, NotFound
from beanpay.events import catalog, outbox
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import InvoicePayload

SQL = queries.load("beanpay.engine", "invoices.sql")
_json = msgspec.json.Encoder(decimal_format="string").encode


class InvoiceRow(msgspec.Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    order_id: uuid.UUID | None
    amount: Decimal
    currency: str
    assets: list[str]
    order_ref: str | None
    buyer_email: str | None
    redirect_url: str | None
    tolerance_bps: int
    speed: str
    expires_at: dt.datetime
    cancelled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    status: str
    exception: str | None

    def event(self) -> InvoicePayload:
        return InvoicePayload(self.id, self.shop_id, self.order_id, self.status, str(self.amount),
                              self.currency.strip(), self.assets, self.order_ref)


async def shop_of(conn: Connection, invoice_id: uuid.UUID) -> uuid.UUID | None:
    """The shop an invoice belongs to (access is checked before anything else is read)."""
    found: uuid.UUID | None = await conn.fetchval(SQL.shop_of, invoice_id)
    return found


async def shop_exists(conn: Connection, shop_id: uuid.UUID) -> bool:
    return await conn.fetchval(SQL.shop_exists, shop_id) is not None


async def page(conn: Connection, shop_id: uuid.UUID, limit: int, before: tuple[dt.datetime | None, uuid.UUID | None],
               *, status: str | None, exception: str | None, created_from: dt.datetime | None,
               created_to: dt.datetime | None) -> list[InvoiceRow]:
    """A shop's invoices, newest first, before a (created_at, id) keyset cursor, filtered."""
    return await fetch_as(conn, SQL.page, InvoiceRow, shop_id, before[0] or dt.datetime.max.replace(tzinfo=dt.UTC),
                          before[1] or uuid.UUID(int=2**128 - 1), limit, status, exception, created_from, created_to)


async def get(conn: Connection, invoice_id: uuid.UUID) -> InvoiceRow:
    return await fetch_one(conn, SQL.get, InvoiceRow, invoice_id, what="invoice")


async def lock(conn: Connection, invoice_id: uuid.UUID) -> None:
    if await conn.fetchval(SQL.lock, invoice_id) is None:
        raise NotFound("no such invoice", invoice_id=str(invoice_id))


async def create(conn: Connection, *, shop_id: uuid.UUID, amount: Decimal, currency: str, assets: list[str],
                 order_ref: str | None, buyer_email: str | None, redirect_url: str | None, tolerance_bps: int,
                 speed: str, expires_at: dt.datetime, actor: audit.Actor) -> InvoiceRow:
    invoice_id = uuid.uuid4()
    await conn.execute(SQL.add, invoice_id, shop_id, amount, currency, assets, order_ref, buyer_email, redirect_url,
                       tolerance_bps, speed, expires_at, audit.user_id(actor))
    row = await get(conn, invoice_id)
    await audit.record(conn, actor, "invoice.create", "invoice", invoice_id, after=row.event())
    await emit_many(conn, [Event(catalog.INVOICE_CREATED, invoice_id, row.event())])
    return row


async def cancel(conn: Connection, invoice_id: uuid.UUID, actor: audit.Actor) -> InvoiceRow:
    """Call off an invoice no one paid: one without an asset picked, or whose order is still unpaid (that
    order is cancelled with it, its address stops counting)."""
    await lock(conn, invoice_id)
    before = await get(conn, invoice_id)
    if before.status not in ("new", "pending", "expired"):
        raise Conflict(f"the invoice is {before.status}; only an unpaid one can be cancelled",
                       current_status=before.status)
    if before.order_id is not None:
        await orders.cancel(conn, await orders.lock_order(conn, before.order_id), actor)
    await conn.execute(SQL.cancel, invoice_id)
    after = await get(conn, invoice_id)
    await audit.record(conn, actor, "invoice.cancel", "invoice", invoice_id, before=before.event(),
                       after=after.event())
    await emit_many(conn, [Event(catalog.INVOICE_CANCELLED, invoice_id, after.event())])
    return after


async def pick(conn: Connection, settings: Settings, invoice_id: uuid.UUID, asset: Asset, *,
               rate_for: Callable[[str], Awaitable[Rate]], btc_account: Bip84Account | None, user_id: uuid.UUID,
               actor: audit.Actor, offered_as: str | None = None) -> uuid.UUID:
    """The customer picks the asset: the quote is locked now and an address handed out, by the order and
    payment of the invoice (in the caller's transaction). Returns the order id. `offered_as`: the choice
    as the invoice offers it, when it is not the asset's own chain/SYMBOL (`lightning/BTC` is Bitcoin)."""
    await lock(conn, invoice_id)
    invoice = await get(conn, invoice_id)
    if invoice.cancelled_at is not None:
        raise Conflict("the invoice was cancelled", current_status="cancelled")
    if invoice.order_id is not None:
        raise Conflict("an asset was picked for this invoice already", current_status="pending")
    now = dt.datetime.now(dt.UTC)
    if invoice.expires_at <= now:
        raise Gone("the invoice has expired")
    choice = offered_as or f"{asset.chain}/{asset.symbol}"
    if choice not in invoice.assets:
        raise InvalidInput("the invoice is not payable in this asset", [{
            "field": "asset", "message": f"{choice} is not offered; offered: {', '.join(invoice.assets)}"}])
    currency = invoice.currency.strip()
    rate = await rate_for(currency)
    amount = crypto_amount(invoice.amount, rate.rate, asset.decimals)
    order_id, payment_id = uuid.uuid4(), uuid.uuid4()
    own = {w.chain: w for w in await wallets.active(conn, invoice.shop_id)}.get(asset.chain)
    script, index = None, None
    if asset.chain == BITCOIN:
        if own is not None:
            derived, _ = await wallets.receive_address(conn, own.id, settings.btc_network,
                                                       dt.timedelta(seconds=settings.address_quarantine_seconds))
        elif btc_account is not None:
            derived = await addresses.allocate_btc(conn, btc_account)
        else:
            raise Conflict("Bitcoin payments are not configured and the shop has no Bitcoin wallet of its own")
        address, script, index = derived.address, derived.script, derived.index
    else:
        address = evm_forwarder(settings.evm_chain(asset.chain), order_id, own.treasury if own else None)
    order = OrderRow(order_id, user_id, invoice.shop_id, invoice.amount, currency, amount, asset.symbol, asset.chain,
                     "pending", "pending", "invoice", None, None, None, invoice.expires_at, 1, now, now)
    payment = PaymentRow(payment_id, order_id, user_id, asset.chain, asset.symbol, amount, 0, asset.decimals,
                         invoice.amount, currency, rate.rate, address, None, None, 0, "pending", invoice.expires_at,
                         None, None, 0, asset.token_address, asset.chain_id, payment_uri(asset, address, amount),
                         rate.source)
    events: list[Event[Any]] = [Event(catalog.ORDER_CREATED, order_id, order.event()),
                                Event(catalog.PAYMENT_INITIATED, order_id, payment.event(invoice.shop_id))]
    written = await conn.fetch(orders.SQL.write_order, *orders.SQL.write_order.bind(
        order_id=order_id, user_id=user_id, shop_id=invoice.shop_id, total=invoice.amount, currency=currency,
        crypto_amount=amount, crypto_currency=asset.symbol, chain=asset.chain, order_type="invoice", pickup_time=None,
        delivery_address=None, special_instructions=None, now=now, expires_at=invoice.expires_at, item_products=[],
        item_names=[], item_base_prices=[], item_final_prices=[], item_quantities=[], item_customizations=[],
        payment_id=payment_id, decimals=asset.decimals, rate=rate.rate, address=address,
        token_address=asset.token_address, chain_id=asset.chain_id, payment_uri=payment.payment_uri,
        rate_source=rate.source, rate_as_of=rate.as_of, script=script, derivation_index=index, stocked_products=[],
        stocked_quantities=[], **orders.written_by(actor, order, events), **orders.idempotent(None, None), alone=False,
        wallet_id=own.id if own else None, invoice_id=invoice.id, invoice_assets=invoice.assets,
        tolerance_bps=invoice.tolerance_bps, speed=invoice.speed, picked_invoice_id=invoice.id,
        trace_parent=tracing.current()))
    assert written and written[0]["recorded"]  # no key, no stock: always written
    conn.wake_after_commit(outbox.CHANNEL)
    return order_id
