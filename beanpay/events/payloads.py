"""What events carry: one msgspec Struct per payload shape, the public contract of the outbox,
Kafka and merchant webhooks. Base units are strings (JSON numbers lose precision past 2^53), fiat
amounts decimal strings. Resource events (shop.created, product.updated, supply.restocked, ...)
carry the resource as the API returns it; those Structs belong to the API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import msgspec


class Payload(msgspec.Struct, frozen=True):
    """Base of every event payload."""


class OrderPayload(Payload, frozen=True):
    """order.*: enough for a merchant's webhook to act without calling back."""

    order_id: uuid.UUID
    shop_id: uuid.UUID
    user_id: uuid.UUID
    order_status: str
    payment_status: str
    total_amount: Decimal
    currency: str


class PaymentPayload(Payload, frozen=True):
    payment_id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    chain: str
    asset: str
    address: str
    amount: str  # base units
    amount_received: str  # base units
    decimals: int
    status: str
    confirmations: int
    expires_at: dt.datetime
    resolution: str | None


class LightningInvoicePayload(Payload, frozen=True):
    """A BOLT11 invoice issued for an order's payment (a second way to pay the same amount)."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    payment_hash: str
    amount_msat: str
    expires_at: dt.datetime
    custodial: bool  # on the platform's node rather than the shop's own


class ClaimPayload(Payload, frozen=True):
    claim_id: uuid.UUID
    order_id: uuid.UUID
    shop_id: uuid.UUID
    user_id: uuid.UUID
    status: str


class DepositPayload(Payload, frozen=True):
    deposit_id: uuid.UUID
    chain: str
    asset: str
    txid: str
    output_index: int
    address: str
    amount: str  # base units
    status: str
    confirmations: int
    block_hash: str | None
    block_height: int | None


class LowStock(Payload, frozen=True):
    """supply.low_stock_alert: stock available to sell fell to or below the reorder level."""

    supply_id: uuid.UUID
    shop_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int  # on the shelf
    reserved: int  # held for unpaid orders
    available: int  # quantity - reserved
    reorder_level: int


class PriceChanged(Payload, frozen=True):
    """product.price_changed: a product's base price (no shop) or a shop's menu price changed."""

    product_id: uuid.UUID
    new_price: Decimal
    old_price: Decimal | None = None
    shop_id: uuid.UUID | None = None
    currency: str | None = None


class AvailabilityChanged(Payload, frozen=True):
    product_id: uuid.UUID
    available: bool
    shop_id: uuid.UUID | None = None


class Deleted(Payload, frozen=True):
    id: uuid.UUID
    shop_id: uuid.UUID | None = None


class RateUpdated(Payload, frozen=True):
    """price.updated: a new exchange rate (fiat per whole coin)."""

    asset: str
    fiat: str
    rate: Decimal
    as_of: dt.datetime
    source: str


class WalletChanged(Payload, frozen=True):
    """A shop's receiving wallet on a chain changed (new orders only); None: back to the platform's."""

    shop_id: uuid.UUID
    chain: str
    wallet_id: uuid.UUID | None
    custodial: bool


class TransferPayload(Payload, frozen=True):
    """refund.*, payout.* and payment.refunded. `claim_token` (whoever holds it says where a refund goes;
    the claim page is /refunds/claim/{claim_token}) is null in every stored and relayed event: it is
    filled in on delivery only, on the shop stream of a principal holding refunds:create and in webhooks
    to an endpoint marked `refund_claims` (api.shop_events, engine.webhooks.claims)."""

    transfer_id: uuid.UUID
    kind: str  # refund | payout
    shop_id: uuid.UUID
    order_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    chain: str
    asset: str
    decimals: int
    variant: str | None
    amount: str | None  # base units; a fiat_fixed refund's is set at approval
    status: str
    destination: str | None
    txid: str | None
    claim_token: str | None  # null here; see above
    failure: str | None


class InvoicePayload(Payload, frozen=True):
    """invoice.*: the invoice; its payment's events are payment.* of its order (order_id)."""

    invoice_id: uuid.UUID
    shop_id: uuid.UUID
    order_id: uuid.UUID | None  # set once the customer picked an asset
    status: str
    amount: str  # fiat, a decimal string
    currency: str
    assets: list[str]
    order_ref: str | None


class NotificationPayload(Payload, frozen=True):
    """notification.sent|delivered|read: what the customer was told, on which channel."""

    notification_id: uuid.UUID
    event_id: uuid.UUID  # the event that caused it
    channel: str  # email | push | in_app
    user_id: uuid.UUID | None
    order_id: uuid.UUID | None
    status: str
