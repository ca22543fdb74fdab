"""The event registry: every event has one topic of the design, a payload type, a version; names are unique."""

import pytest

from beanpay.events import catalog
from beanpay.events.catalog import UnknownEventType, event_type


def test_events_go_to_the_design_topics() -> None:
    assert event_type("shop.created").topic == "coffee-shop-events"
    assert event_type("supply.low_stock_alert").topic == "supply-events"
    assert event_type("order.claimed").topic == "claim-events"
    assert event_type("payment.reverted").topic == "payment-events"
    assert {"coffee-shop-events", "product-events", "supply-events", "order-events", "payment-events",
            "claim-events", "wallet-events", "notification-events", "price-events"} <= set(catalog.ALL_TOPICS)


def test_names_are_unique_and_typed() -> None:
    assert len({e.name for e in catalog.ALL}) == len(catalog.ALL)
    assert all(e.version >= 1 and e.payload is not None and e.aggregate for e in catalog.ALL)


def test_status_events_cover_every_status() -> None:
    from beanpay.engine.lifecycle import OrderStatus
    from beanpay.engine.payments import PaymentStatus

    assert set(catalog.ORDER_STATUS_EVENTS) == {s.value for s in OrderStatus}
    assert {s.value for s in PaymentStatus} <= set(catalog.PAYMENT_STATUS_EVENTS)


def test_unknown_events_are_refused() -> None:
    with pytest.raises(UnknownEventType):
        event_type("shop.exploded")
