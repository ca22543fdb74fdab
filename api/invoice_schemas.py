"""Wire types of invoices."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from beanpay.api.schemas import Currency, Email, Input, PaymentChoice, PaymentRequest, Price

InvoiceStatus = Literal["new", "pending", "processing", "confirmed", "underpaid", "overpaid", "late", "expired",
                        "cancelled"]


class InvoiceCreate(Input):
    """What an integration asks to be paid. The customer picks one of `assets` at checkout; the quote and
    address are made then. Expiry, tolerance and speed stay within the deployment's limits."""

    shop_id: uuid.UUID
    amount: Price
    assets: Annotated[list[PaymentChoice], Meta(min_length=1, max_length=20)]
    currency: Currency = "USD"
    order_ref: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    buyer_email: Email | None = None
    redirect_url: Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None = None
    expires_in_seconds: Annotated[int, Meta(ge=60, le=7 * 24 * 3600)] | None = None  # default: the payment window
    underpay_tolerance_bps: Annotated[int, Meta(ge=0, le=1000)] | None = None  # default: the deployment's
    speed: Literal["medium", "low"] = "low"  # low: the chain's confirmations; medium: one confirmation


class Invoice(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    status: str  # new (no asset picked), then its payment's; expired; cancelled
    exception: str | None  # underpaid, overpaid, late
    amount: Decimal
    currency: str
    assets: list[str]  # offered, as chain/SYMBOL
    order_ref: str | None
    buyer_email: str | None
    redirect_url: str | None
    underpay_tolerance_bps: int
    speed: str
    expires_at: dt.datetime
    created_at: dt.datetime
    order_id: uuid.UUID | None  # the order its payment belongs to, once an asset is picked
    payment: PaymentRequest | None
    checkout_token: str | None = None  # send it as X-Checkout-Token to read and pay the invoice without an account


class InvoiceQuery(Struct, forbid_unknown_fields=True):
    shop_id: uuid.UUID
    status: InvoiceStatus | None = None
    exception: Literal["underpaid", "overpaid", "late"] | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20


class InvoiceSummary(Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    status: str
    exception: str | None
    amount: Decimal
    currency: str
    assets: list[str]
    order_ref: str | None
    expires_at: dt.datetime
    created_at: dt.datetime
    order_id: uuid.UUID | None


class InvoicePage(Struct):
    items: list[InvoiceSummary]
    next_cursor: str | None
