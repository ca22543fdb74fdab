"""`beanpay dev up|down|status`: PostgreSQL, Redis, Kafka, anvil and btcd on loopback, no Docker."""

SERVICE_NAMES = ("postgres", "redis", "kafka", "anvil", "btcd")
