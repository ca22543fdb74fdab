"""Merchant webhooks: fan-out of events to endpoints, signed delivery with retries (Standard Webhooks)."""
