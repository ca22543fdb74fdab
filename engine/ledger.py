"""The shop ledger: double entry, append-only, in base units of each asset.

A confirmed payment debits `deposits:<chain>:<asset>` (funds now at the order's address) and credits
`merchant:<shop>` (owed to the shop). A reorg that takes a payment back writes the opposite pair;
nothing is ever updated or deleted (the table refuses it), and the database checks that every entry
group sums to zero.

Each entry says who holds the money: the platform (custodial: its wallet, its Lightning node) or the shop
(its own wallet or node). Custody follows the money, not the shop's settings: a Lightning payment to the
shop's own node is the shop's even where its on-chain payments go to the platform's wallet. Refunds and
payouts debit the custodial balance under a per-shop lock, and the database refuses a debit that would
take it below zero; only what the chain imposes (a reorg's reversal, a network fee) can, as a debt.
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
    custodial: bool  # the platform holds this money (its wallet or node), else the shop's own does


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
        [r[3].memo for r in rows], [r[3].custodial for r in rows])


class Balance(msgspec.Struct):
    chain: str
    asset: str
    custodial: bool  # held by the platform (its wallet or node), else by the shop's own wallet or node
    balance: int  # negative: a debt (a reorg took back money already paid out)


def owed_account(kind: str, chain: str, asset: str) -> str:
    """What approved refunds or payouts owe until their money leaves: refunds:<chain>:<asset>, payouts:..."""
    return f"{kind}s:{chain}:{asset}"


async def post_transfer(conn: Connection, kind: str, entry: str, *, shop_id: uuid.UUID, chain: str, asset: str,
                        amount: int, payment_id: uuid.UUID | None, transfer_id: uuid.UUID, memo: str,
                        custodial: bool) -> None:
    """A transfer's balanced entry pair (`kind` refund or payout). entry "": approved, the shop's balance
    debited to what is owed; "sent": its transaction first confirmed, owed to the deposits it spent;
    "fee": the network fee the wallet paid; "cancelled": called off after approval, back to the shop."""
    merchant, owed, funds = merchant_account(shop_id), owed_account(kind, chain, asset), deposits_account(chain, asset)
    debit, credit = {"": (merchant, owed), "sent": (owed, funds), "fee": (merchant, funds),
                     "cancelled": (owed, merchant)}[entry]
    # debits are positive: a debit of the merchant (credit) account lowers the shop's balance
    await conn.execute(SQL.post_transfer, uuid.uuid4(), [debit, credit], shop_id, chain, asset,
                       f"{kind}_{entry}" if entry else kind, payment_id, memo, transfer_id, [amount, -amount],
                       custodial)


class Overdraft(Exception):
    """A debit the shop's custodial balance (what is final of it) does not cover."""

    def __init__(self, balance: int, amount: int) -> None:
        super().__init__(f"the shop's custodial balance ({balance} base units final) does not cover {amount}")
        self.balance, self.amount = balance, amount


async def reserve(conn: Connection, shop_id: uuid.UUID, chain: str, asset: str, amount: int) -> None:
    """Before a refund or payout of custodial money is approved (and debited in the same transaction): take
    the shop's custody lock, held to commit, and check the balance covers it, counting only credits a reorg
    can no longer take back (a payment counted at an invoice's faster speed waits for the chain's full depth
    before its money goes out again). The database checks the balance again."""
    await conn.execute(SQL.lock_custody, str(shop_id))
    balance = int(await conn.fetchval(SQL.custodial_balance, merchant_account(shop_id), chain, asset))
    final = balance - int(await conn.fetchval(SQL.unfinal_custodial, shop_id, chain, asset))
    if amount > final:
        raise Overdraft(final, amount)


class Debt(msgspec.Struct):
    chain: str
    asset: str
    shops: int
    owed: int


async def debts(conn: Connection) -> list[Debt]:
    """Custodial balances below zero, per asset: what reorgs and fees left shops owing."""
    return await fetch_as(conn, SQL.debts, Debt)


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
