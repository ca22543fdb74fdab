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


def refunds_account(chain: str, asset: str) -> str:
    return f"refunds:{chain}:{asset}"


# the entry pair of each refund kind: (debited account, credited account) given shop, chain and asset
def _refund_accounts(kind: str, shop_id: uuid.UUID, chain: str, asset: str) -> tuple[str, str]:
    merchant, owed, funds = merchant_account(shop_id), refunds_account(chain, asset), deposits_account(chain, asset)
    return {"refund": (merchant, owed), "refund_sent": (owed, funds), "refund_fee": (merchant, funds),
            "refund_cancelled": (owed, merchant)}[kind]


async def post_refund(conn: Connection, kind: str, *, shop_id: uuid.UUID, chain: str, asset: str, amount: int,
                      payment_id: uuid.UUID, refund_id: uuid.UUID, memo: str) -> None:
    """A refund's balanced entry pair: `refund` when approved (the shop's balance is debited),
    `refund_sent` when its transaction first confirms, with `refund_fee` for the network fee the shop's
    wallet paid, `refund_cancelled` if it is called off after approval."""
    debit, credit = _refund_accounts(kind, shop_id, chain, asset)
    # debits are positive: a debit of the merchant (credit) account lowers the shop's balance
    await conn.execute(SQL.post_refund, uuid.uuid4(), [debit, credit], shop_id, chain, asset, kind, payment_id,
                       memo, refund_id, [amount, -amount])


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
    payment_id: uuid.UUID
    memo: str | None
    created_at: dt.datetime
    custodial: bool


async def history(conn: Connection, shop_id: uuid.UUID, before: int, limit: int) -> list[Entry]:
    return await fetch_as(conn, SQL.history, Entry, merchant_account(shop_id), before, limit)
