"""Payouts: a custodial shop's balance (money the platform's wallet holds for it) sent to the merchant's
own address. The merchant asks, an operator approves (the balance is debited then, once), and approved
Bitcoin payouts go out in batches, one transaction with an output each, from a PSBT the operator's wallet
signs; EVM payouts are sent by the platform's payout hot wallet, or by the operator's own wallet."""

from __future__ import annotations

import uuid

from beanpay import audit
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.db import Connection, fetch_as, fetchrow_as
from beanpay.engine import ledger
from beanpay.engine.assets import payable_assets
from beanpay.engine.transfers import approval, bitcoin, refunds, service
from beanpay.engine.transfers.service import SQL, TransferRow
from beanpay.errors import Conflict, InvalidInput


async def custodial_balance(conn: Connection, shop_id: uuid.UUID, chain: str, asset: str) -> int:
    return sum(b.balance for b in await ledger.balances(conn, shop_id)
               if b.custodial and b.chain == chain and b.asset == asset)


async def request(conn: Connection, settings: Settings, *, shop_id: uuid.UUID, chain: str, asset: str, amount: int,
                  address: str, reason: str | None, actor: audit.Actor) -> TransferRow:
    """A payout request (the shop row stays locked to commit, so requests are decided one at a time and
    never ask for more than the custodial balance less what other requests hold)."""
    found = payable_assets(settings).get((chain, asset))
    if found is None:
        raise InvalidInput("no such asset", [{"field": "asset", "message": f"{chain}/{asset} is not paid in here"}])
    held = await conn.fetchrow(SQL.lock_shop_payouts, shop_id, chain, asset)
    assert held is not None
    available = await custodial_balance(conn, shop_id, chain, asset) - int(held["held"])
    if amount > available:
        raise InvalidInput("the payout is not possible", [{
            "field": "amount", "message": f"{amount} is above what the platform holds for the shop "
                                         f"({max(available, 0)} base units, less payouts not yet approved)"}])
    destination = await refunds.watch_destination(conn, chain, address, settings.btc_network)
    row = await fetchrow_as(conn, SQL.add_payout, TransferRow, uuid.uuid4(), shop_id, chain, asset, found.decimals,
                            found.token_address, amount, destination, reason, audit.user_id(actor))
    assert row is not None
    await service.record(conn, settings.jwt_secret or "", None, row, actor)
    return row


async def approve(conn: Connection, settings: Settings, payout: TransferRow, *, actor: audit.Actor) -> TransferRow:
    """An operator's approval (the row is locked): the custodial balance still covers it, and is debited."""
    assert payout.amount is not None
    await conn.fetchrow(SQL.lock_shop_payouts, payout.shop_id, payout.chain, payout.asset)
    balance = await custodial_balance(conn, payout.shop_id, payout.chain, payout.asset)
    if payout.amount > balance:
        raise Conflict(f"the shop's custodial balance ({balance} base units) no longer covers this payout")
    return await approval.approve(conn, settings, payout, rate=None, btc=None, actor=actor)


async def batch(conn: Connection, settings: Settings, rpc: BitcoinRpc, *, limit: int) -> list[TransferRow]:
    """Approved Bitcoin payouts waiting for a transaction, in one PSBT for the operator's wallet to sign
    (each with its share of the fee). Empty when none wait."""
    due = await fetch_as(conn, SQL.batchable, TransferRow, service.BITCOIN, limit)
    if not due:
        return []
    return await bitcoin.prepare(conn, settings, rpc, due, batched=True)


async def of_batch(conn: Connection, batch_id: uuid.UUID) -> list[TransferRow]:
    return await fetch_as(conn, SQL.of_batch, TransferRow, batch_id)
