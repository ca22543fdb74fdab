"""The shop ledger: double entry, append-only, in base units of each asset.

A confirmed payment debits `deposits:<chain>:<asset>` (funds now at the order's address) and credits
`merchant:<shop>` (owed to the shop). A reorg that takes a payment back writes the opposite pair;
nothing is ever updated or deleted (the table refuses it), and the database checks at commit that
every entry group sums to zero.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import msgspec

from beanpay import queries
from beanpay.db import Connection, fetch_as

SQL = queries.load("beanpay.engine", "ledger.sql")


def merchant_account(shop_id: uuid.UUID) -> str:
    return f"merchant:{shop_id}"


def deposits_account(chain: str, asset: str) -> str:
    return f"deposits:{chain}:{asset}"


@dataclass(frozen=True, slots=True)
class Credit:
    shop_id: uuid.UUID
    chain: str
    asset: str
    amount: int  # base units; negative reverses an earlier credit
    payment_id: uuid.UUID
    memo: str


async def post_many(conn: Connection, credits: list[Credit]) -> None:
    """Several credits, each its own balanced entry group, in one statement."""
    if not credits:
        return
    groups = [uuid.uuid4() for _ in credits]
    rows = [(g, deposits_account(c.chain, c.asset), c.amount, c) for g, c in zip(groups, credits, strict=True)]
    rows += [(g, merchant_account(c.shop_id), -c.amount, c) for g, c in zip(groups, credits, strict=True)]
    await conn.execute(
        SQL.post, [r[0] for r in rows], [r[1] for r in rows], [r[3].shop_id for r in rows], [r[3].chain for r in rows],
        [r[3].asset for r in rows], [r[2] for r in rows],
        ["payment" if r[3].amount > 0 else "reversal" for r in rows], [r[3].payment_id for r in rows],
        [r[3].memo for r in rows])


class Balance(msgspec.Struct):
    chain: str
    asset: str
    custodial: bool  # paid into the platform's wallet (the platform holds it), else into the shop's own
    balance: int


def owed_account(kind: str, chain: str, asset: str) -> str:
    """What approved refunds or payouts owe until their money leaves: refunds:<chain>:<asset>, payouts:..."""
    return f"{kind}s:{chain}:{asset}"


async def post_transfer(conn: Connection, kind: str, entry: str, *, shop_id: uuid.UUID, chain: str, asset: str,
                        amount: int, payment_id: uuid.UUID | None, transfer_id: uuid.UUID, memo: str) -> None:
    """A transfer's balanced entry pair (`kind` refund or payout). entry "": approved, the shop's balance
    debited to what is owed; "sent": its transaction first confirmed, owed to the deposits it spent;
    "fee": the network fee the wallet paid; "cancelled": called off after approval, back to the shop."""
    merchant, owed, funds = merchant_account(shop_id), owed_account(kind, chain, asset), deposits_account(chain, asset)
    debit, credit = {"": (merchant, owed), "sent": (owed, funds), "fee": (merchant, funds),
                     "cancelled": (owed, merchant)}[entry]
    # debits are positive: a debit of the merchant (credit) account lowers the shop's balance
    await conn.execute(SQL.post_transfer, uuid.uuid4(), [debit, credit], shop_id, chain, asset,
                       f"{kind}_{entry}" if entry else kind, payment_id, memo, transfer_id, [amount, -amount])


async def balances(conn: Connection, shop_id: uuid.UUID) -> list[Balance]:
    """The shop's balances; the merchant account is a credit, so its sum is negated."""
    return await fetch_as(conn, SQL.balances, Balance, merchant_account(shop_id))


class Entry(msgspec.Struct):
    id: int
    entry_group: uuid.UUID
    chain: str
    asset: str
    amount: int  # base units credited to the shop; negative for a reversal
    kind: str
    payment_id: uuid.UUID | None
    memo: str | None
    created_at: dt.datetime
    custodial: bool
    transfer_id: uuid.UUID | None  # the refund or payout it belongs to


async def history(conn: Connection, shop_id: uuid.UUID, before: int, limit: int) -> list[Entry]:
    return await fetch_as(conn, SQL.history, Entry, merchant_account(shop_id), before, limit)
