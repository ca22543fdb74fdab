"""The payment engine: orders, quotes, payments, inventory, claims, ledger, webhooks. Built in the
engine issue."""
