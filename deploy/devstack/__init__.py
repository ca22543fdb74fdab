"""`beanpay dev up|down|status`: PostgreSQL, Redis, Kafka, anvil and btcd on loopback, no Docker."""
