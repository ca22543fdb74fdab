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
from beanpay.engine.transfers import approval, bitcoin, refunds, rules, service
from beanpay.engine.transfers.rules import AmountError
from beanpay.engine.transfers.service import SQL, TransferRow
from beanpay.errors import InvalidInput


async def custodial_balance(conn: Connection, shop_id: uuid.UUID, chain: str, asset: str) -> int:
    return int(await conn.fetchval(ledger.SQL.custodial_balance, ledger.merchant_account(shop_id), chain, asset))


async def request(conn: Connection, settings: Settings, *, shop_id: uuid.UUID, chain: str, asset: str, amount: int,
                  address: str, reason: str | None, actor: audit.Actor) -> TransferRow:
    """A payout request (the shop row stays locked to commit, so requests are decided one at a time and
    never ask for more than the custodial balance less what other requests hold), of at least the asset's
    minimum (below it the network fee costs more than it moves)."""
    found = payable_assets(settings).get((chain, asset))
    if found is None:
        raise InvalidInput("no such asset", [{"field": "asset", "message": f"{chain}/{asset} is not paid in here"}])
    try:
        rules.check_minimum(amount, rules.minimum_amount(chain, asset, found.decimals,
                                                         token=found.token_address is not None,
                                                         configured=settings.transfer_minimums))
    except AmountError as exc:
        raise InvalidInput("the payout is not possible", [{"field": exc.field, "message": exc.message}]) from None
    held = await conn.fetchrow(SQL.lock_shop_payouts, shop_id, chain, asset)
    assert held is not None
    room = rules.fee_room("payout", chain, asset, found.decimals, token=found.token_address is not None,
                          configured=settings.transfer_minimums)
    available = await custodial_balance(conn, shop_id, chain, asset) - int(held["held"]) - room
    if amount > available:
        raise InvalidInput("the payout is not possible", [{
            "field": "amount", "message": f"{amount} is above what the platform holds for the shop "
                                         f"({max(available, 0)} base units, less payouts not yet approved and "
                                         f"{room} kept for the network fee)"}])
    destination = await refunds.watch_destination(conn, chain, address, settings.btc_network)
    row = await fetchrow_as(conn, SQL.add_payout, TransferRow, uuid.uuid4(), shop_id, chain, asset, found.decimals,
                            found.token_address, amount, destination, reason, audit.user_id(actor))
    assert row is not None
    await service.record(conn, settings.jwt_secret or "", None, row, actor)
    return row


async def approve(conn: Connection, settings: Settings, payout: TransferRow, *, actor: audit.Actor) -> TransferRow:
    """An operator's approval (the row is locked): debited from the custodial balance only as far as it
    still covers it (a refund approved since the request may have taken part of it)."""
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
