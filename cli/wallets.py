"""`beanpay wallet balance`: what a shop's wallets hold on chain against its ledger."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from beanpay import db
from beanpay.config import Settings
from beanpay.engine.payment_uri import coins
from beanpay.engine.reconciliation import Holding, shop_holdings

DECIMALS = {"BTC": 8, "ETH": 18}


async def _holdings(settings: Settings, shop_id: uuid.UUID) -> list[Holding]:
    pool = await db.create_pool(settings)
    try:
        async with pool.acquire() as conn:
            return await shop_holdings(conn, settings, shop_id)
    finally:
        await pool.close()


def balance(settings: Settings, shop_id: uuid.UUID, *, as_json: bool) -> int:
    rows = asyncio.run(_holdings(settings, shop_id))
    if as_json:
        print(msgspec.json.encode(rows).decode())
        return 0
    if not rows:
        print(f"shop {shop_id}: no balances and no wallets of its own")
        return 0
    decimals = {t.symbol: t.decimals for c in settings.evm_chains or [] for t in c.tokens} | DECIMALS
    print(f"{'CHAIN':6} {'ASSET':6} {'WALLET':9} {'ON CHAIN':>24} {'LEDGER':>24} {'DIFFERENCE':>24}")
    for r in rows:
        d = decimals.get(r.asset, 0)
        print(f"{r.chain:6} {r.asset:6} {r.wallet:9} {coins(int(r.on_chain), d):>24} {coins(int(r.ledger), d):>24} "
              f"{coins(int(r.difference), d):>24}")
    print("\nown: the shop's wallets against its balance paid into them; platform: the platform's wallet "
          "against every custodial shop's balance")
    return 0
