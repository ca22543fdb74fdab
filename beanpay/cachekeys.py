"""Cache keys and TTLs from the system design, and the invalidation channel every API process
listens on. Shared so that any process that changes a cached row (API, engine) can invalidate it."""

from __future__ import annotations

CHANNEL = "beanpay:cache:invalidate"

# the design's keys and TTLs (seconds)
TTL = {
    "shop": 4 * 3600,
    "product": 2 * 3600,
    "menu": 2 * 3600,
    "supply": 30 * 60,
    "supplies": 15 * 60,
    "favorites": 3600,
}


def shop_key(shop_id: object) -> str:
    return f"shop:{shop_id}"


def product_key(product_id: object) -> str:
    return f"product:{product_id}"


def menu_key(shop_id: object) -> str:
    return f"shop:{shop_id}:menu"


def supply_key(supply_id: object) -> str:
    return f"supply:{supply_id}"


def supplies_key(shop_id: object) -> str:
    return f"shop:{shop_id}:supplies"


def favorites_key(user_id: object) -> str:
    return f"user:{user_id}:favorites"


# who a credential is: short-lived, so a revocation holds everywhere within seconds even if an
# invalidation message were lost (BEANPAY_ACCESS_CACHE_SECONDS, at most 5)
def session_key(digest_hex: str) -> str:
    return f"session:{digest_hex}"


def user_access_key(user_id: object) -> str:
    return f"user:{user_id}:access"


def api_key_key(digest_hex: str) -> str:
    return f"apikey:{digest_hex}"
