"""Issuing a BOLT11 invoice for an order's Bitcoin payment, on the node that serves its shop.

The invoice asks for exactly the payment's amount (sats x 1000: the quote already rounded up to the ledger's
unit, the sat, so a sub-sat part would be owed to nobody), expires with the payment window, and carries as
its description hash the SHA-256 of a text naming the order, so a paid invoice proves which order it paid.

The node is asked outside any transaction (a slow node must not hold row locks); the invoice is then
recorded only if the payment still waits and has no open invoice (one guarded statement), else it is
cancelled on the node again. Amountless invoices are never issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
import uuid
from decimal import Decimal

import msgspec
import structlog

from beanpay import audit, queries
from beanpay.chains.lightning.lnd import LndClient, LndError, LndUnavailable
from beanpay.config import Settings
from beanpay.db import Connection, Database, fetchrow_as
from beanpay.engine.lightning import nodes
from beanpay.engine.lightning.nodes import NodeRow
from beanpay.errors import Conflict, NotFound, Unavailable
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import LightningInvoicePayload

log = structlog.get_logger("lightning")
SQL = queries.load("beanpay.engine", "lightning.sql")
LIGHTNING = "lightning"  # as a payment choice: Bitcoin, with a Lightning invoice issued too
MIN_EXPIRY = dt.timedelta(seconds=30)  # less than this left of the window: on chain only


class InvoiceRow(msgspec.Struct):
    payment_hash: str
    node_id: uuid.UUID
    payment_id: uuid.UUID
    order_id: uuid.UUID
    bolt11: str
    description: str
    amount_msat: Decimal
    expires_at: dt.datetime
    state: str
    amt_paid_msat: Decimal | None
    settled_at: dt.datetime | None


class PaymentToInvoice(msgspec.Struct):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    status: str
    chain: str
    crypto_currency: str
    crypto_amount: Decimal
    wallet_address: str
    expires_at: dt.datetime
    payment_uri: str
    shop_id: uuid.UUID
    user_id: uuid.UUID
    total_amount: Decimal
    currency: str
    shop_name: str


async def payment_of(conn: Connection, order_id: uuid.UUID) -> PaymentToInvoice | None:
    """An order's payment as an invoice for it needs it (its shop and customer, to check access)."""
    return await fetchrow_as(conn, SQL.payment_to_invoice, PaymentToInvoice, order_id)


def description(order_id: uuid.UUID, shop_name: str, total: Decimal, currency: str) -> str:
    return f"beanpay order {order_id} at {shop_name[:80]}: {total} {currency.strip()}"


def description_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def amount_msat(crypto_amount: int) -> int:
    return crypto_amount * 1000


def unified_uri(payment_uri: str, bolt11: str) -> str:
    """BIP21 with a `lightning` parameter: one QR any wallet pays, on chain or over Lightning."""
    return f"{payment_uri}&lightning={urllib.parse.quote(bolt11.upper(), safe='')}"


def unavailable_reason(node: NodeRow | None, amount: int) -> str | None:
    """Why a node cannot take this payment now (None: it can), from what the lightning service last saw."""
    if node is None:
        return "no Lightning node is configured for this shop"
    if node.health in ("down", "not_synced"):
        return node.health_reason or f"the shop's Lightning node is {node.health.replace('_', ' ')}"
    if node.inbound_msat is not None and node.inbound_msat < amount:
        return "the shop's Lightning node cannot receive this amount (not enough inbound liquidity)"
    return None


async def issue(db: Database, settings: Settings, order_id: uuid.UUID, actor: audit.Actor) -> InvoiceRow:
    """The order's open invoice, issuing one on its shop's node if it has none. Raises Conflict when the
    payment no longer waits or is not in Bitcoin, Unavailable (with the reason) when no node can take it."""
    async with db.acquire() as conn:
        payment = await fetchrow_as(conn, SQL.payment_to_invoice, PaymentToInvoice, order_id)
        if payment is None:
            raise NotFound("no such order", order_id=str(order_id))
        if payment.chain != "btc":
            raise Conflict("Lightning pays Bitcoin payments only", chain=payment.chain)
        existing = await fetchrow_as(conn, SQL.open_invoice, InvoiceRow, payment.payment_id)
        if existing is not None and existing.amount_msat == amount_msat(int(payment.crypto_amount)):
            return existing
        if payment.status != "pending":
            raise Conflict(f"the payment is {payment.status}; nothing is left to pay", payment_status=payment.status)
        node = await nodes.serving(conn, settings, payment.shop_id)
    msat = amount_msat(int(payment.crypto_amount))
    reason = unavailable_reason(node, msat)
    if reason is not None:
        raise Unavailable(reason)
    assert node is not None
    left = payment.expires_at - dt.datetime.now(dt.UTC)
    if left < MIN_EXPIRY:
        raise Conflict("the payment window is about to close", expires_at=payment.expires_at.isoformat())
    text = description(order_id, payment.shop_name, payment.total_amount, payment.currency)
    client = nodes.client_for(settings, node)
    try:
        added = await client.add_invoice(value_msat=msat, description_hash=description_hash(text),
                                         expiry_seconds=int(left.total_seconds()), memo="")
        async with db.transaction() as conn:
            row = await fetchrow_as(conn, SQL.add_invoice, InvoiceRow, added.hash_hex, node.id, payment.payment_id,
                                    added.payment_request, text, msat, payment.expires_at, node.pubkey)
            if row is not None:
                await audit.record(conn, actor, "lightning.invoice", "order", order_id,
                                   after={"payment_hash": row.payment_hash, "amount_msat": str(msat),
                                          "node": node.pubkey})
                await emit_many(conn, [Event(catalog.PAYMENT_LIGHTNING_INVOICE, order_id, LightningInvoicePayload(
                    payment.payment_id, order_id, payment.shop_id, row.payment_hash, str(msat), row.expires_at,
                    node.custodial))])
        if row is None:  # the payment moved, or a concurrent request recorded its invoice first
            await _cancel_quietly(client, added.hash_hex)
            async with db.acquire() as conn:
                winner = await fetchrow_as(conn, SQL.open_invoice, InvoiceRow, payment.payment_id)
            if winner is None:
                raise Conflict("the payment changed while its invoice was issued; read the order again")
            return winner
        return row
    except LndUnavailable as e:
        log.warning("lightning node unreachable", node=node.pubkey, error=str(e))
        raise Unavailable("the shop's Lightning node cannot be reached") from e
    except LndError as e:
        log.warning("lightning node refused an invoice", node=node.pubkey, error=e.message)
        raise Unavailable(f"the shop's Lightning node refused the invoice: {e.message}") from e
    finally:
        await client.close()


async def _cancel_quietly(client: LndClient, payment_hash: str) -> None:
    try:
        await client.cancel_invoice(payment_hash)
    except (LndError, LndUnavailable) as e:  # it expires with the window anyway, and nobody knows it
        log.warning("could not cancel an unrecorded invoice", payment_hash=payment_hash, error=str(e))
