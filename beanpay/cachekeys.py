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


# each key from its id (a UUID, or a credential's digest in hex)
shop_key = "shop:{}".format
product_key = "product:{}".format
menu_key = "shop:{}:menu".format
supply_key = "supply:{}".format
supplies_key = "shop:{}:supplies".format
favorites_key = "user:{}:favorites".format

# who a credential is: short-lived, so a revocation holds everywhere within seconds even if an
# invalidation message were lost (BEANPAY_ACCESS_CACHE_SECONDS, at most 5)
session_key = "session:{}".format
user_access_key = "user:{}:access".format
api_key_key = "apikey:{}".format
