"""Refunds and payouts on the network, followed by what the indexer sees at their destination: a
transfer's transaction confirmed there completes it (the ledger records the money leaving, once); a reorg that
orphans it takes the transfer back to in flight, and mined again it completes again without a second
entry. Runs with the payment settlement of the same queued addresses, in its transaction.

A transfer sent again after its transaction was dropped keeps that transaction (transfer_attempts): anyone
may still broadcast it, and the retry conflicts with it, so one of the two is mined. Whichever it is pays
the transfer: an earlier one mined after all makes the transfer in flight with it (its fee, its inputs)
whatever the transfer was doing, failed or waiting to be sent again, and it completes as any other."""

from __future__ import annotations

import uuid

import msgspec
import structlog
from embit.psbt import PSBT

from beanpay import audit
from beanpay.db import Connection, fetch_as
from beanpay.engine.transfers import service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL, TransferRow

log = structlog.get_logger("transfers")
WAITING = (TransferStatus.FAILED, TransferStatus.AWAITING_SIGNATURE, TransferStatus.SENDING)


class Attempt(msgspec.Struct):
    """A transaction a transfer was sent with before it was sent again."""

    txid: str
    batch_id: uuid.UUID | None
    psbt: str | None
    signed_tx: str | None
    sender: str | None
    sender_nonce: int | None
    network_fee: int | None


async def attempts(conn: Connection, transfer_id: uuid.UUID) -> list[Attempt]:
    """A transfer's earlier transactions, newest first."""
    return await fetch_as(conn, SQL.attempts_of, Attempt, transfer_id)


def psbt_outpoints(psbt: str) -> list[tuple[str, int]]:
    """The outputs a PSBT's transaction spends. Pure."""
    return [(i.txid.hex(), i.vout) for i in PSBT.from_string(psbt).tx.vin]


def psbt_fee(psbt: str) -> int:
    """The whole fee a PSBT's transaction pays (its inputs less its outputs). Pure."""
    built = PSBT.from_string(psbt)
    return sum(int(i.witness_utxo.value) for i in built.inputs) - sum(int(o.value) for o in built.tx.vout)


async def mined_after_all(conn: Connection, transfer_id: uuid.UUID, txid: str, *, secret: str,
                          actor: audit.Actor = audit.SYSTEM) -> TransferRow:
    """The transaction `txid` of the transfer (its current one, or one it was sent with before) is mined:
    it is the transfer's transaction again, with what it paid, and the transfer is in flight with it."""
    transfer = await service.lock(conn, transfer_id)
    if transfer.txid != txid:
        await conn.fetchval(SQL.revive_attempt, transfer_id, txid)
        transfer = await service.lock(conn, transfer_id)
        if transfer.chain == service.BITCOIN and transfer.psbt is not None:
            spent = psbt_outpoints(transfer.psbt)  # the outputs it holds are the ones that transaction spent
            await conn.execute(SQL.hold_inputs, transfer.id, transfer.chain, [t for t, _ in spent],
                               [v for _, v in spent])
    log.warning("a transfer's earlier transaction was mined", transfer=str(transfer_id), txid=txid,
                status=transfer.status)
    if transfer.status in WAITING:
        transfer = await service.sent(conn, transfer, txid, secret=secret, actor=actor)
    return transfer


async def follow(conn: Connection, keys: list[tuple[str, str]], *, secret: str,
                 actor: audit.Actor = audit.SYSTEM) -> int:
    """Move the transfers at these (chain, address) pairs with their transactions; returns how many moved."""
    rows = await conn.fetch(SQL.at_destinations, [k[0] for k in keys], [k[1] for k in keys])
    moved = 0
    for r in rows:
        arrived = r["arrival"] == "confirmed" and int(r["arrived"]) >= int(r["amount"])
        status = r["status"]
        if arrived and (status in WAITING or r["arrived_txid"] != r["txid"]):
            status = (await mined_after_all(conn, r["id"], r["arrived_txid"], secret=secret, actor=actor)).status
        if status == TransferStatus.IN_FLIGHT and arrived:
            await service.move(conn, await service.lock(conn, r["id"]), TransferStatus.COMPLETED, secret=secret,
                               actor=actor)
            moved += 1
        elif status == TransferStatus.COMPLETED and not arrived:
            log.warning("a reorg took a completed transfer's transaction away", transfer=str(r["id"]))
            await service.move(conn, await service.lock(conn, r["id"]), TransferStatus.IN_FLIGHT, secret=secret,
                               actor=actor, reverted=True)
            moved += 1
    return moved
