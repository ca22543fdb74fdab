"""Refunds: customer-claimed, merchant-approved, sent from the wallet the payment went to."""
