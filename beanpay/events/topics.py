"""Event types and the Kafka topic each one goes to, as named in the system design.

`deposit.*` events have no topic in the design; they go to `deposit-events` (chosen here).
`payment.reverted` (a reorg took a seen or confirmed payment back to pending) is added to payment-events.
"""

from __future__ import annotations

EVENT_TOPICS: dict[str, str] = {
    **dict.fromkeys(
        ["shop.created", "shop.updated", "shop.deleted", "shop.opened", "shop.closed"], "coffee-shop-events"),
    **dict.fromkeys(
        ["product.created", "product.updated", "product.deleted", "product.price_changed",
         "product.availability_changed"], "product-events"),
    **dict.fromkeys(
        ["supply.created", "supply.updated", "supply.deleted", "supply.restocked", "supply.low_stock_alert"],
        "supply-events"),
    **dict.fromkeys(
        ["order.created", "order.updated", "order.cancelled", "order.confirmed", "order.preparing",
         "order.ready", "order.completed", "order.picked_up", "order.expired"], "order-events"),
    **dict.fromkeys(
        ["payment.initiated", "payment.processing", "payment.confirmed", "payment.failed", "payment.expired",
         "payment.refunded", "payment.underpaid", "payment.overpaid", "payment.late", "payment.resolved",
         "payment.reverted"],
        "payment-events"),
    **dict.fromkeys(["order.claimed", "claim.processed", "claim.expired"], "claim-events"),
    **dict.fromkeys(["notification.sent", "notification.delivered", "notification.read"], "notification-events"),
    **dict.fromkeys(["price.updated", "exchange_rate.changed"], "price-events"),
    **dict.fromkeys(["deposit.detected", "deposit.confirmed", "deposit.orphaned"], "deposit-events"),
}

ALL_TOPICS: tuple[str, ...] = (*sorted(set(EVENT_TOPICS.values())), "wallet-events")


class UnknownEventType(ValueError):
    pass


def topic_for(event_type: str) -> str:
    try:
        return EVENT_TOPICS[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None
