import pytest

from beanpay.events.topics import ALL_TOPICS, UnknownEventType, topic_for


def test_design_topics_and_names() -> None:
    assert topic_for("shop.created") == "coffee-shop-events"
    assert topic_for("supply.low_stock_alert") == "supply-events"
    assert topic_for("order.claimed") == "claim-events"
    assert {"coffee-shop-events", "product-events", "supply-events", "order-events", "payment-events",
            "claim-events", "wallet-events", "notification-events", "price-events"} <= set(ALL_TOPICS)


def test_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType):
        topic_for("shop.exploded")
