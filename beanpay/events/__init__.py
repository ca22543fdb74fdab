"""Domain events: the catalogue of event types and topics, the outbox writer, the Kafka relay."""
