"""Wire types of shop wallets, refunds and payouts. Base units are strings."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from msgspec import Meta, Struct

from beanpay.api.schemas import Input, Price


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


BaseUnits = Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,77}$", description="base units (sats, wei, token units)")]
Variant = Literal["crypto_paid", "fiat_today", "fiat_fixed", "overpaid", "custom"]


class RefundCreate(Input):
    """crypto_paid: what the payment received; fiat_today: the fiat paid at today's rate; fiat_fixed:
    `fiat_amount`, converted at the rate of the approval; overpaid: the part paid above the amount due;
    custom: `amount` in base units. `fee_bps` of it is kept back (basis points: 150 = 1.5%)."""

    variant: Variant
    amount: BaseUnits | None = None
    fiat_amount: Price | None = None
    fee_bps: Annotated[int, Meta(ge=0, le=9999)] = 0
    reason: Annotated[str, Meta(max_length=500)] | None = None


class RefundClaim(Input):
    """Where the refund goes: an `address` on the refund's chain, or, for a Bitcoin refund, a BOLT11
    `lightning_invoice` for exactly its amount (paid at once where the shop's node may pay)."""

    address: Annotated[str, Meta(min_length=1, max_length=128)] | None = None
    lightning_invoice: Annotated[str, Meta(min_length=20, max_length=2000, pattern=r"^(?i:ln)")] | None = None

    def __post_init__(self) -> None:
        if (self.address is None) == (self.lightning_invoice is None):
            raise ValueError("address: give an address or a lightning_invoice, one of them")


class SentTransaction(Input):
    tx_hash: Annotated[str, Meta(pattern=r"^0x[0-9a-fA-F]{64}$")]


class TransferCancel(Input):
    """`not_sent`: an operator cancelling an approved payout (or refund of the platform's money) their own
    wallet was to send states that no transaction was sent for it (kept in the audit trail); not needed
    before approval."""

    not_sent: bool = False


class UnsignedTransaction(Struct):
    """EVM: what the merchant's wallet sends for the refund (from the shop's own treasury)."""

    chain_id: int
    to: str
    value: str  # wei
    data: str


class SignedPsbt(Input):
    psbt: Annotated[str, Meta(min_length=1, max_length=400_000)]


class Transfer(Struct):
    """A refund or a payout: money going out of a wallet to someone's own address."""

    id: uuid.UUID
    kind: str  # refund | payout
    shop_id: uuid.UUID
    chain: str
    asset: str
    decimals: int
    amount: str | None  # base units; a fiat_fixed refund's is set at approval
    status: str
    method: str | None  # psbt | hot_wallet | external
    custodial: bool  # sent from the platform's wallet
    destination: str | None
    psbt: str | None  # Bitcoin: for the wallet's owner to sign and upload
    batch_id: uuid.UUID | None  # payouts sent in one transaction
    unsigned_transaction: UnsignedTransaction | None  # EVM, signed by the merchant: what to send
    payment_uri: str | None  # EVM, signed by the merchant: the same as an EIP-681 link
    txid: str | None
    network_fee: str | None  # this transfer's share of its transaction's fee, paid from the wallet
    failure: str | None
    reason: str | None
    created_at: dt.datetime
    approved_at: dt.datetime | None
    sent_at: dt.datetime | None
    completed_at: dt.datetime | None
    # refunds only
    order_id: uuid.UUID | None = None
    payment_id: uuid.UUID | None = None
    variant: str | None = None
    fee_bps: int = 0
    fiat_amount: Decimal | None = None
    fiat_currency: str | None = None
    rate: Decimal | None = None
    claim_token: str | None = None
    claim_url: str | None = None  # the page the customer enters their address on
    claim_expires_at: dt.datetime | None = None
    claimed_at: dt.datetime | None = None


class RefundView(Struct):
    """What the customer's refund link shows."""

    id: uuid.UUID
    chain: str
    asset: str
    decimals: int
    amount: str | None
    status: str
    destination: str | None
    txid: str | None
    claim_expires_at: dt.datetime | None


class TransferPage(Struct):
    items: list[Transfer]
    next_cursor: str | None


class PayoutCreate(Input):
    """A payout of the shop's balance held by the platform (custodial) to the merchant's own address."""

    chain: Annotated[str, Meta(min_length=1, max_length=32)]
    asset: Annotated[str, Meta(min_length=1, max_length=16)]
    amount: BaseUnits
    address: Annotated[str, Meta(min_length=1, max_length=128)]
    reason: Annotated[str, Meta(max_length=500)] | None = None


class BatchCreate(Input):
    chain: Literal["btc"] = "btc"
    limit: Annotated[int, Meta(ge=1, le=250)] = 100  # payouts per transaction


class Batch(Struct):
    """Approved Bitcoin payouts in one transaction: one PSBT for the operator's wallet to sign."""

    batch_id: uuid.UUID | None
    psbt: str | None
    network_fee: str
    payouts: list[Transfer]


class TransferQuery(Struct, forbid_unknown_fields=True):
    cursor: str | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
