"""The rows the engine reasons about, decoded once per fetch (each statement selects exactly these
columns), and the event payloads they become."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import msgspec

from beanpay.events.payloads import ClaimPayload, OrderPayload, PaymentPayload


class OrderRow(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    shop_id: uuid.UUID
    total_amount: Decimal
    currency: str
    crypto_amount: int | None
    crypto_currency: str | None
    chain: str | None
    payment_status: str
    order_status: str
    order_type: str
    pickup_time: dt.datetime | None
    delivery_address: str | None
    special_instructions: str | None
    expires_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def event(self) -> OrderPayload:
        return OrderPayload(self.id, self.shop_id, self.user_id, self.order_status, self.payment_status,
                            self.total_amount, self.currency.strip())


class PaymentRow(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    user_id: uuid.UUID
    chain: str
    crypto_currency: str
    crypto_amount: int
    amount_received: int
    decimals: int
    fiat_amount: Decimal
    fiat_currency: str
    exchange_rate: Decimal
    wallet_address: str
    transaction_hash: str | None
    block_number: int | None
    confirmations: int
    status: str
    expires_at: dt.datetime
    confirmed_at: dt.datetime | None
    resolution: str | None
    credited: int
    token_address: str | None
    chain_id: int | None
    payment_uri: str
    rate_source: str

    def event(self, shop_id: uuid.UUID) -> PaymentPayload:
        return PaymentPayload(self.id, self.order_id, shop_id, self.chain, self.crypto_currency, self.wallet_address,
                              str(self.crypto_amount), str(self.amount_received), self.decimals, self.status,
                              self.confirmations, self.expires_at, self.resolution)


class ClaimRow(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    user_id: uuid.UUID
    shop_id: uuid.UUID
    claim_code: str
    status: str
    claimed_at: dt.datetime
    expires_at: dt.datetime | None
    processed_at: dt.datetime | None
    pickup_time: dt.datetime | None

    def event(self) -> ClaimPayload:
        return ClaimPayload(self.id, self.order_id, self.shop_id, self.user_id, self.status)


class DepositRow(msgspec.Struct):
    """A deposit as settlement sees it."""

    chain: str
    address: str
    asset: str
    txid: str
    amount: int
    status: str
    first_seen_at: dt.datetime
    confirmations: int
    block_height: int | None
    held_by_platform: bool | None = None  # a Lightning invoice's node's custody; None on chain: the wallet's
