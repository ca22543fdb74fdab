"""Every event type, in one registry: its name, Kafka topic (as named in the system design), the
aggregate that keys it (events of one key stay in order), its payload type and schema version.

Code emits `catalog.ORDER_CONFIRMED`, never a string it made up. `deposit.*` events have no topic in
the design; they go to `deposit-events` (chosen here). `payment.reverted` (a reorg took a seen or
confirmed payment back to pending) is added to payment-events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from beanpay.events import payloads as p

P = TypeVar("P", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class EventType(Generic[P]):
    name: str
    topic: str
    aggregate: str  # what aggregate_id names: an order, a shop, a deposit address...
    payload: type[P]
    version: int = 1  # the payload's schema version; bumped on a breaking change


class UnknownEventType(ValueError):
    pass


SHOPS, PRODUCTS, SUPPLIES = "coffee-shop-events", "product-events", "supply-events"
ORDERS, PAYMENTS, CLAIMS = "order-events", "payment-events", "claim-events"
NOTIFICATIONS, PRICES, DEPOSITS, WALLETS = "notification-events", "price-events", "deposit-events", "wallet-events"

# resource events carry the resource as the API returns it
SHOP_CREATED = EventType("shop.created", SHOPS, "shop", msgspec.Struct)
SHOP_UPDATED = EventType("shop.updated", SHOPS, "shop", msgspec.Struct)
SHOP_DELETED = EventType("shop.deleted", SHOPS, "shop", p.Deleted)
SHOP_OPENED = EventType("shop.opened", SHOPS, "shop", msgspec.Struct)
SHOP_CLOSED = EventType("shop.closed", SHOPS, "shop", msgspec.Struct)

PRODUCT_CREATED = EventType("product.created", PRODUCTS, "product", msgspec.Struct)
PRODUCT_UPDATED = EventType("product.updated", PRODUCTS, "product", msgspec.Struct)
PRODUCT_DELETED = EventType("product.deleted", PRODUCTS, "product", p.Deleted)
PRODUCT_PRICE_CHANGED = EventType("product.price_changed", PRODUCTS, "product", p.PriceChanged)
PRODUCT_AVAILABILITY_CHANGED = EventType("product.availability_changed", PRODUCTS, "product", p.AvailabilityChanged)

SUPPLY_CREATED = EventType("supply.created", SUPPLIES, "supply", msgspec.Struct)
SUPPLY_UPDATED = EventType("supply.updated", SUPPLIES, "supply", msgspec.Struct)
SUPPLY_DELETED = EventType("supply.deleted", SUPPLIES, "supply", p.Deleted)
SUPPLY_RESTOCKED = EventType("supply.restocked", SUPPLIES, "supply", msgspec.Struct)
SUPPLY_LOW_STOCK = EventType("supply.low_stock_alert", SUPPLIES, "supply", p.LowStock)

ORDER_CREATED = EventType("order.created", ORDERS, "order", p.OrderPayload)
ORDER_UPDATED = EventType("order.updated", ORDERS, "order", p.OrderPayload)
ORDER_CANCELLED = EventType("order.cancelled", ORDERS, "order", p.OrderPayload)
ORDER_CONFIRMED = EventType("order.confirmed", ORDERS, "order", p.OrderPayload)
ORDER_PREPARING = EventType("order.preparing", ORDERS, "order", p.OrderPayload)
ORDER_READY = EventType("order.ready", ORDERS, "order", p.OrderPayload)
ORDER_COMPLETED = EventType("order.completed", ORDERS, "order", p.OrderPayload)
ORDER_PICKED_UP = EventType("order.picked_up", ORDERS, "order", p.OrderPayload)
ORDER_EXPIRED = EventType("order.expired", ORDERS, "order", p.OrderPayload)

PAYMENT_INITIATED = EventType("payment.initiated", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_PROCESSING = EventType("payment.processing", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_CONFIRMED = EventType("payment.confirmed", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_FAILED = EventType("payment.failed", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_EXPIRED = EventType("payment.expired", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_REFUNDED = EventType("payment.refunded", PAYMENTS, "order", p.TransferPayload)  # a refund completed
PAYMENT_UNDERPAID = EventType("payment.underpaid", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_OVERPAID = EventType("payment.overpaid", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_LATE = EventType("payment.late", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_RESOLVED = EventType("payment.resolved", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_REVERTED = EventType("payment.reverted", PAYMENTS, "order", p.PaymentPayload)
PAYMENT_LIGHTNING_INVOICE = EventType("payment.lightning_invoice", PAYMENTS, "order", p.LightningInvoicePayload)

ORDER_CLAIMED = EventType("order.claimed", CLAIMS, "order", p.ClaimPayload)
CLAIM_PROCESSED = EventType("claim.processed", CLAIMS, "order", p.ClaimPayload)
CLAIM_EXPIRED = EventType("claim.expired", CLAIMS, "order", p.ClaimPayload)

PRICE_UPDATED = EventType("price.updated", PRICES, "price", p.RateUpdated)

DEPOSIT_DETECTED = EventType("deposit.detected", DEPOSITS, "deposit", p.DepositPayload)
DEPOSIT_CONFIRMED = EventType("deposit.confirmed", DEPOSITS, "deposit", p.DepositPayload)
DEPOSIT_ORPHANED = EventType("deposit.orphaned", DEPOSITS, "deposit", p.DepositPayload)
DEPOSIT_REPLACED = EventType("deposit.replaced", DEPOSITS, "deposit", p.DepositPayload)  # never credited
DEPOSIT_DROPPED = EventType("deposit.dropped", DEPOSITS, "deposit", p.DepositPayload)  # never credited

WALLET_CHANGED = EventType("wallet.changed", WALLETS, "shop", p.WalletChanged)

INVOICE_CREATED = EventType("invoice.created", PAYMENTS, "invoice", p.InvoicePayload)
INVOICE_CANCELLED = EventType("invoice.cancelled", PAYMENTS, "invoice", p.InvoicePayload)

# refunds are keyed by their order, so a refund's events stay in order with its payment's
REFUND_CREATED = EventType("refund.created", PAYMENTS, "order", p.TransferPayload)
REFUND_CLAIMED = EventType("refund.claimed", PAYMENTS, "order", p.TransferPayload)
REFUND_APPROVED = EventType("refund.approved", PAYMENTS, "order", p.TransferPayload)
REFUND_IN_FLIGHT = EventType("refund.in_flight", PAYMENTS, "order", p.TransferPayload)
REFUND_COMPLETED = EventType("refund.completed", PAYMENTS, "order", p.TransferPayload)
REFUND_REVERTED = EventType("refund.reverted", PAYMENTS, "order", p.TransferPayload)
REFUND_FAILED = EventType("refund.failed", PAYMENTS, "order", p.TransferPayload)
REFUND_CANCELLED = EventType("refund.cancelled", PAYMENTS, "order", p.TransferPayload)
# payouts are keyed by their shop, in order with its other balance events
PAYOUT_REQUESTED = EventType("payout.requested", WALLETS, "shop", p.TransferPayload)
PAYOUT_APPROVED = EventType("payout.approved", WALLETS, "shop", p.TransferPayload)
PAYOUT_IN_FLIGHT = EventType("payout.in_flight", WALLETS, "shop", p.TransferPayload)
PAYOUT_COMPLETED = EventType("payout.completed", WALLETS, "shop", p.TransferPayload)
PAYOUT_REVERTED = EventType("payout.reverted", WALLETS, "shop", p.TransferPayload)
PAYOUT_FAILED = EventType("payout.failed", WALLETS, "shop", p.TransferPayload)
PAYOUT_CANCELLED = EventType("payout.cancelled", WALLETS, "shop", p.TransferPayload)

NOTIFICATION_SENT = EventType("notification.sent", NOTIFICATIONS, "notification", p.NotificationPayload)
NOTIFICATION_DELIVERED = EventType("notification.delivered", NOTIFICATIONS, "notification", p.NotificationPayload)
NOTIFICATION_READ = EventType("notification.read", NOTIFICATIONS, "notification", p.NotificationPayload)

ALL: tuple[EventType[Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, EventType))
BY_NAME: dict[str, EventType[Any]] = {e.name: e for e in ALL}
ALL_TOPICS: tuple[str, ...] = tuple(sorted({e.topic for e in ALL}))

# the events of order status changes, for code that moves an order to a status it computed
ORDER_STATUS_EVENTS: dict[str, EventType[p.OrderPayload]] = {
    "confirmed": ORDER_CONFIRMED, "preparing": ORDER_PREPARING, "ready": ORDER_READY,
    "completed": ORDER_COMPLETED, "cancelled": ORDER_CANCELLED, "expired": ORDER_EXPIRED, "pending": ORDER_UPDATED,
}
# the events of payment status changes; a payment back at pending (a reorg) is `payment.reverted`
PAYMENT_STATUS_EVENTS: dict[str, EventType[p.PaymentPayload]] = {
    "pending": PAYMENT_REVERTED, "processing": PAYMENT_PROCESSING, "confirmed": PAYMENT_CONFIRMED,
    "underpaid": PAYMENT_UNDERPAID, "overpaid": PAYMENT_OVERPAID, "late": PAYMENT_LATE,
    "expired": PAYMENT_EXPIRED, "failed": PAYMENT_FAILED,
}


def event_type(name: str) -> EventType[Any]:
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {name!r}") from None


def names_on(topics: tuple[str, ...]) -> list[str]:
    """Event names published to these topics."""
    return sorted(e.name for e in ALL if e.topic in topics)
