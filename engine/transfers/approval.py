"""Approving a transfer: its amount fixed, the shop's balance debited, and how it is sent decided.
Bitcoin: a PSBT the wallet's owner signs (a refund's built now; payouts' built in batches). EVM: the
payout hot wallet of whoever holds the money if one is configured, else a transaction the merchant's own
wallet sends. A refund claimed with a Lightning invoice: paid by the lightning service."""

from __future__ import annotations

from decimal import Decimal

from beanpay import audit
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.db import Connection, fetchrow_as
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.lightning import refunds as lightning_refunds
from beanpay.engine.transfers import bitcoin, evm, refunds, rules, service, watchdog
from beanpay.engine.transfers.rules import AmountError, TransferStatus
from beanpay.engine.transfers.service import SQL, TransferRow
from beanpay.errors import Conflict


def method_of(settings: Settings, transfer: TransferRow) -> tuple[str, TransferStatus]:
    if lightning_refunds.by_lightning(transfer):  # the customer gave an invoice: the lightning service pays it
        return "lightning", TransferStatus.SENDING
    if not transfer.platform_money and transfer.wallet_id is None:  # claims refuse it: never the platform's wallet
        raise Conflict("this refund's money is in the shop's own Lightning node: only that node pays it back")
    if transfer.chain == service.BITCOIN:
        return "psbt", TransferStatus.AWAITING_SIGNATURE
    if evm.hot_wallet(settings, transfer) is not None:
        return "hot_wallet", TransferStatus.SENDING
    return "external", TransferStatus.AWAITING_SIGNATURE


async def approve(conn: Connection, settings: Settings, transfer: TransferRow, *, rate: Decimal | None,
                  btc: BitcoinRpc | None, actor: audit.Actor) -> TransferRow:
    """Approve (the row is locked by the caller). A fiat_fixed refund's amount is its fiat at `rate`, the
    rate now; the others were fixed when made."""
    amount = transfer.amount
    if transfer.variant == "fiat_fixed":
        assert transfer.fiat_amount is not None
        try:
            amount = rules.net_amount(rules.gross_amount(
                "fiat_fixed", received=0, expected=0, fiat_paid=Decimal(0), rate=rate, decimals=transfer.decimals,
                fiat_amount=transfer.fiat_amount, custom=None), transfer.fee_bps)
            rules.check_minimum(amount, rules.minimum_amount(
                transfer.chain, transfer.asset, transfer.decimals, token=transfer.token_address is not None,
                configured=settings.transfer_minimums))
        except AmountError as exc:
            raise refunds.field_error(exc) from None
    assert amount is not None
    if transfer.kind == "refund":
        await refunds.check_still_refundable(conn, transfer, amount)
    method, status = method_of(settings, transfer)
    fee_room = rules.fee_room(transfer.kind, transfer.chain, transfer.asset, transfer.decimals,
                              token=transfer.token_address is not None, configured=settings.transfer_minimums)
    after = await service.approve(conn, transfer, amount=amount,
                                  rate=rate if transfer.variant == "fiat_fixed" else None, method=method,
                                  status=status, secret=settings.jwt_secret or "", actor=actor, fee_room=fee_room)
    if method == "psbt" and after.kind == "refund":  # payouts wait for their batch
        assert btc is not None
        (after,) = await bitcoin.prepare(conn, settings, btc, [after])
    return after


async def resend(conn: Connection, settings: Settings, transfer: TransferRow, *, btc: BitcoinRpc | None,
                 actor: audit.Actor) -> TransferRow:
    """A failed transfer (its transaction dropped, replaced, or the hot wallet's limit reached) is sent
    again the way it was approved: a fresh PSBT, a fresh transaction to sign, or the hot wallet again.
    The transaction it had is kept, and the new one conflicts with it (its inputs, or its nonce), since
    anyone may broadcast the old one again; if the node has the old one again already, the transfer is in
    flight with it instead, and nothing new is sent."""
    target = TransferStatus.SENDING if transfer.method in ("hot_wallet", "lightning") \
        else TransferStatus.AWAITING_SIGNATURE
    rules.transition(transfer.status, target, transfer.kind)
    if transfer.txid is not None and transfer.method != "lightning":
        if await watchdog.on_network(settings, btc, transfer.chain, transfer.txid) == "known":
            return await service.sent(conn, transfer, transfer.txid, secret=settings.jwt_secret or "", actor=actor)
        await conn.execute(SQL.keep_attempt, transfer.id)
    after = await fetchrow_as(conn, SQL.resend, TransferRow, transfer.id, target.value)
    if after is None:
        raise IllegalTransition(transfer.kind, transfer.status, target)
    await service.record(conn, settings.jwt_secret or "", transfer, after, actor)
    if after.method == "psbt" and after.kind == "refund":
        assert btc is not None
        (after,) = await bitcoin.prepare(conn, settings, btc, [after])
    return after
