"""The payment engine: orders, quotes, payments, inventory, claims, ledger, webhooks.

So far its pure domain rules (state machines, pricing, quotes, payment assessment), unit-tested and
free of I/O; the transactional services around them are the engine issue's work.
"""
