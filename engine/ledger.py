"""The shop ledger: double entry, append-only, in base units of each asset.

A confirmed payment debits `deposits:<chain>:<asset>` (funds now at the order's address) and credits
`merchant:<shop>` (owed to the shop). A reorg that takes a payment back writes the opposite pair;
nothing is ever updated or deleted (the table refuses it), and the database checks at commit that
every entry group sums to zero.
"""

from __future__ import annotations

import uuid

from beanpay.db import Connection


def merchant_account(shop_id: uuid.UUID) -> str:
    return f"merchant:{shop_id}"


def deposits_account(chain: str, asset: str) -> str:
    return f"deposits:{chain}:{asset}"


async def post(conn: Connection, *, shop_id: uuid.UUID, chain: str, asset: str, amount: int, payment_id: uuid.UUID,
               memo: str) -> uuid.UUID:
    """Credit the shop `amount` base units (a negative amount reverses an earlier credit)."""
    group = uuid.uuid4()
    kind = "payment" if amount > 0 else "reversal"
    await conn.execute(
        """INSERT INTO ledger_entries (entry_group, account, shop_id, chain, asset, amount, kind, payment_id, memo)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9), ($1, $10, $3, $4, $5, $11, $7, $8, $9)""",
        group, deposits_account(chain, asset), shop_id, chain, asset, amount, kind, payment_id, memo,
        merchant_account(shop_id), -amount)
    return group


async def balances(conn: Connection, shop_id: uuid.UUID) -> list[tuple[str, str, int]]:
    """(chain, asset, balance) owed to the shop; the merchant account is a credit, so its sum is negated."""
    rows = await conn.fetch(
        """SELECT chain, asset, -sum(amount) AS balance FROM ledger_entries WHERE account = $1
           GROUP BY chain, asset ORDER BY chain, asset""", merchant_account(shop_id))
    return [(r["chain"], r["asset"], int(r["balance"])) for r in rows]
