"""Cache keys and TTLs from the system design, and the invalidation channel every API process
listens on. Shared so that any process that changes a cached row (API, engine) can invalidate it."""

from __future__ import annotations

CHANNEL = "beanpay:cache:invalidate"


class Key:
    """A key's template: `shop_key(shop_id)` is "shop:<id>" (one id, positional: a wrong call fails)."""

    __slots__ = ("template",)

    def __init__(self, template: str) -> None:
        self.template = template

    def __call__(self, key: object, /) -> str:
        return self.template.format(key)


# the design's keys and TTLs (seconds)
TTL = {
    "shop": 4 * 3600,
    "product": 2 * 3600,
    "menu": 2 * 3600,
    "supply": 30 * 60,
    "supplies": 15 * 60,
    "favorites": 3600,
}


# each key from its id (a UUID, or a credential's digest in hex)
shop_key = Key("shop:{}")
product_key = Key("product:{}")
menu_key = Key("shop:{}:menu")
supply_key = Key("supply:{}")
supplies_key = Key("shop:{}:supplies")
favorites_key = Key("user:{}:favorites")

# who a credential is: short-lived, so a revocation holds everywhere within seconds even if an
# invalidation message were lost (BEANPAY_ACCESS_CACHE_SECONDS, at most 5)
session_key = Key("session:{}")
user_access_key = Key("user:{}:access")
api_key_key = Key("apikey:{}")
