"""The payload of deposit.* events."""

from __future__ import annotations

import uuid

import msgspec


class DepositEvent(msgspec.Struct):
    deposit_id: uuid.UUID
    chain: str
    asset: str
    txid: str
    output_index: int
    address: str
    amount: str  # base units
    status: str
    confirmations: int
    block_hash: str | None
    block_height: int | None
