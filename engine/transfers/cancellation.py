"""Cancelling a paid order the shop has not started on: the order closes, its stock goes back on the
shelf, the payment is marked refunded (its credit stays: the refund's own entries debit it) and a refund
of everything it received is issued for the customer to claim. One transaction.

And who may cancel a payout: cancelling credits its amount back to the shop, so it must be certain no
transaction pays it. Before approval nothing can be sent and the merchant withdraws the request; once
approved, the operator's own wallet (or a batch being signed, or a transaction that was dropped) may send
it, so only an operator cancels: for a payout their own wallet sends, by stating nothing was sent (kept in
the audit trail); for a failed one, once every transaction it was sent with provably cannot be mined."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from beanpay import audit, queries
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import inventory, orders
from beanpay.engine.lifecycle import OrderStatus
from beanpay.engine.payments import PAID
from beanpay.engine.rows import OrderRow
from beanpay.engine.transfers import refunds, service, watchdog
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import TransferRow
from beanpay.errors import Conflict, InvalidInput

SETTLEMENT = queries.load("beanpay.engine", "settlement.sql")


async def cancel_paid(conn: Connection, order: OrderRow, *, claim_ttl: dt.timedelta, secret: str,
                      actor: audit.Actor, minimums: Mapping[str, str]) -> tuple[OrderRow, TransferRow]:
    """The order row is locked by the caller; refused (409 naming the state) once preparation started."""
    after = await orders.move(conn, order, OrderStatus.CANCELLED, actor, payment_in=sorted(PAID))
    await inventory.uncommit(conn, [order.id])
    await inventory.release(conn, [order.id])
    payment = await conn.fetchrow(SETTLEMENT.lock_payment_of_order, order.id)
    assert payment is not None
    if payment["resolution"] is None:
        await conn.execute(SETTLEMENT.mark_resolved, payment["id"], "refunded")
    refund = await refunds.issue(conn, order_id=order.id, variant="crypto_paid", amount=None, fiat_amount=None,
                                 fee_bps=0, reason="the shop cancelled the paid order", rate=None,
                                 claim_ttl=claim_ttl, secret=secret, actor=actor, minimums=minimums)
    return after, refund


NOT_SENT = "the operator stated that no transaction was sent for this payout"


async def refuse_while_payable(conn: Connection, settings: Settings, btc: BitcoinRpc | None,
                               transfer: TransferRow) -> None:
    """Refused (409) while a transaction the transfer was sent with (a dropped one, or one a retry
    replaced) may still be mined: cancelling then could pay it and credit it back."""
    txid = await watchdog.open_transaction(conn, settings, btc, transfer)
    if txid is not None:
        raise Conflict(f"its transaction {txid} may still be mined: send the {transfer.kind} again (the retry "
                       "conflicts with it), or spend its inputs or nonce first", txid=txid)


async def cancel(conn: Connection, settings: Settings, btc: BitcoinRpc | None, transfer: TransferRow, *,
                 operator: bool, not_sent: bool, actor: audit.Actor) -> TransferRow:
    """Cancel a refund or payout (the row is locked by the caller), refused (409, or 422 naming the field)
    while a transaction may pay it. Before approval the shop calls it off. Once approved, the platform's
    money (every payout, and refunds of what the platform holds) is sent by the operator's wallet, which
    may already have sent it: only an operator cancels, and for one their own wallet sends, by stating
    none was sent (kept in the audit trail). A failed transfer is cancelled only once every transaction it
    was sent with provably cannot be mined."""
    if transfer.status not in (TransferStatus.AWAITING_CLAIM, TransferStatus.AWAITING_APPROVAL):
        if transfer.platform_money:
            if not operator:
                raise Conflict(f"the {transfer.kind} is approved: the platform's wallet may already have sent it, "
                               "so only an operator may cancel it now", current_status=transfer.status)
            if transfer.batch_id is not None and transfer.status == TransferStatus.AWAITING_SIGNATURE:
                raise InvalidInput(f"the {transfer.kind} is in a batch being signed", [
                    {"field": f"{transfer.kind}_id", "message": "it is in a PSBT out for signing; wait, or let it "
                                                                "fail"}])
            if transfer.method in ("external", "psbt") and transfer.status == TransferStatus.AWAITING_SIGNATURE:
                if not not_sent:
                    raise InvalidInput("the operator's own wallet may have sent it", [{
                        "field": "not_sent", "message": f"state that no transaction was sent for this "
                                                        f"{transfer.kind} (true); if one was, record it instead"}])
                await audit.record(conn, actor, f"{transfer.kind}.not_sent", transfer.kind, transfer.id,
                                   after={"statement": NOT_SENT.replace("payout", transfer.kind),
                                          "status": transfer.status})
        await refuse_while_payable(conn, settings, btc, transfer)
    return await service.move(conn, transfer, TransferStatus.CANCELLED, secret=settings.jwt_secret or "",
                              actor=actor)
