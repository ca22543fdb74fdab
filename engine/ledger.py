"""The shop ledger: double entry, append-only, in base units of each asset.

A confirmed payment debits `deposits:<chain>:<asset>` (funds now at the order's address) and credits
`merchant:<shop>` (owed to the shop). A reorg that takes a payment back writes the opposite pair;
nothing is ever updated or deleted (the table refuses it), and the database checks at commit that
every entry group sums to zero.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from beanpay.db import Connection


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
        """INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::numeric[],
                                $7::text[], $8::uuid[], $9::text[])""",
        [r[0] for r in rows], [r[1] for r in rows], [r[3].shop_id for r in rows], [r[3].chain for r in rows],
        [r[3].asset for r in rows], [r[2] for r in rows],
        ["payment" if r[3].amount > 0 else "reversal" for r in rows], [r[3].payment_id for r in rows],
        [r[3].memo for r in rows])


async def balances(conn: Connection, shop_id: uuid.UUID) -> list[tuple[str, str, int]]:
    """(chain, asset, balance) owed to the shop; the merchant account is a credit, so its sum is negated."""
    rows = await conn.fetch(
        """SELECT chain, asset, -sum(amount) AS balance FROM ledger_entries WHERE account = $1
           GROUP BY chain, asset ORDER BY chain, asset""", merchant_account(shop_id))
    return [(r["chain"], r["asset"], int(r["balance"])) for r in rows]
