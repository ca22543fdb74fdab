"""Telling customers what happened to their orders, payments and refunds (the design's notification
service): Kafka events become notification rows (fanout), which are sent by email, Web Push and in
the app (sender), each at most once per event, channel and recipient."""
