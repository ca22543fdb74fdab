"""`beanpay dev up|down|status`: PostgreSQL, Redis, Kafka, anvil, btcd and two lnd nodes on loopback, no Docker."""

SERVICE_NAMES = ("postgres", "redis", "kafka", "anvil", "btcd", "lnd-merchant", "lnd-customer")
