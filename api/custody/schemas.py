"""Wire types of shop wallets, refunds and payouts. Base units are strings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from msgspec import Meta, Struct

from beanpay.api.schemas import Input


class WalletSet(Input):
    """Bitcoin: `account_key` (BIP84 account xpub/zpub; tpub/vpub on test networks) and optionally its
    `key_origin` `[fingerprint/84h/coin'h/account'h]`, which signers need to sign PSBTs. EVM chains:
    `treasury`, the EIP-55 checksummed address the shop's forwarders flush to."""

    account_key: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    key_origin: Annotated[str, Meta(min_length=1, max_length=120)] | None = None
    treasury: Annotated[str, Meta(min_length=1, max_length=42)] | None = None
    gap_limit: Annotated[int, Meta(ge=1, le=10000)] = 20


class WalletOut(Struct):
    chain: str
    custodial: bool  # true: new orders on this chain are paid into the platform's wallet
    wallet_id: uuid.UUID | None = None
    account_key: str | None = None
    key_origin: str | None = None
    treasury: str | None = None
    first_addresses: list[str] | None = None  # Bitcoin: receive addresses 0/0.. to compare with the wallet's
    gap_limit: int | None = None
    gap: int | None = None  # receive addresses handed out after the last used one
    next_index: int | None = None
    created_at: dt.datetime | None = None


class ShopWallets(Struct):
    shop_id: uuid.UUID
    custodial: bool  # some chain still pays into the platform's wallet
    wallets: list[WalletOut]
