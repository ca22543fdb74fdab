"""Refund and payout transactions that left the network: one in flight that the indexer never saw arrive, and that
provably will not be mined as it stands (dropped from every mempool we can see, or replaced by another spending
the same coins or nonce), fails, so the merchant can send it again; so does one the node mined reverted (an EVM
call that failed moved nothing, and never arrives). A transfer is never failed while its transaction may be
mined already: a Bitcoin node without -txindex (Bitcoin Core's default) calls mined transactions "unknown"
too, so a Bitcoin transaction's fate is read from its inputs in the node's chain and the indexer's record of
what spent them (bitcoin.fate), never from "unknown" alone; a transaction seen at its destination is left to
the indexer and the reorg handling."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import structlog
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound

from beanpay import audit
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import Settings
from beanpay.db import Connection, Database
from beanpay.engine.transfers import bitcoin, service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL, TransferRow

log = structlog.get_logger("transfers")
Seen = Literal["known", "unknown", "reverted"]


async def on_network(settings: Settings, btc: BitcoinRpc | None, chain: str, txid: str) -> Seen:
    """What the node says of a transaction: known (in its mempool or mined), unknown, or (EVM) mined and
    reverted. For Bitcoin "unknown" proves nothing (a node without -txindex says it of mined ones):
    decisions go through `fate`."""
    if chain == service.BITCOIN:
        assert btc is not None
        try:
            await btc.call("getrawtransaction", txid, 0)
            return "known"
        except RpcError as exc:
            if exc.code in (-5, -8):  # no such transaction (Bitcoin Core and btcd both answer -5)
                return "unknown"
            raise
    w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(chain).rpc_url))
    try:
        try:
            receipt = await w3.eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
            return "reverted" if int(receipt["status"]) == 0 else "known"
        except TransactionNotFound:
            pass
        try:
            await w3.eth.get_transaction(txid)  # type: ignore[arg-type]
            return "known"
        except TransactionNotFound:
            return "unknown"
    finally:
        await w3.provider.disconnect()


Fate = Literal["known", "mined", "unsure", "dropped", "conflicted", "reverted"]


async def fate(conn: Connection, settings: Settings, btc: BitcoinRpc | None, chain: str, txid: str,
               psbt: str | None) -> Fate:
    """What became of a transaction a transfer was sent with: on the network ("known", "mined"), perhaps
    mined ("unsure": Bitcoin, an input spent by a transaction the indexer has not followed yet), not mined
    but able to be ("dropped"), never able to be ("conflicted": Bitcoin, an input spent by another mined
    transaction), or mined reverted (EVM). An EVM transaction the node does not have is "dropped" (its
    nonce decides whether it can still be mined)."""
    if chain == service.BITCOIN:
        assert btc is not None
        return await bitcoin.fate(conn, btc, txid, psbt)
    seen = await on_network(settings, btc, chain, txid)
    return "dropped" if seen == "unknown" else seen


async def open_transaction(conn: Connection, settings: Settings, btc: BitcoinRpc | None,
                           transfer: TransferRow) -> str | None:
    """A transaction the transfer was sent with (its own, or one it replaced) that may be or become mined,
    if any: one the node has, one mined or perhaps mined, or one it does not have that could still be
    broadcast. Proven unable: mined reverted, an input spent by another mined transaction (Bitcoin), its
    sender's nonce taken by a mined one (EVM)."""
    chain = transfer.chain
    for r in await conn.fetch(SQL.transactions_of, transfer.id):
        seen = await fate(conn, settings, btc, chain, r["txid"], r["psbt"])
        if seen in ("reverted", "conflicted"):
            continue
        if seen != "dropped" or chain == service.BITCOIN:  # a dropped Bitcoin one's inputs are unspent
            return str(r["txid"])
        if r["sender"] is None or r["sender_nonce"] is None:
            return str(r["txid"])  # nothing known to prove it
        w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(chain).rpc_url))
        try:
            used = int(await w3.eth.get_transaction_count(AsyncWeb3.to_checksum_address(r["sender"]), "latest"))
        finally:
            await w3.provider.disconnect()
        if used <= int(r["sender_nonce"]):
            return str(r["txid"])
    return None


async def fail_dropped(db: Database, settings: Settings, btc: BitcoinRpc, *, after: dt.timedelta,
                       batch: int = 50) -> int:
    """Fail the transfers whose transactions the network dropped, replaced or reverted; returns how many."""
    failed = 0
    async with db.transaction() as conn:
        for row in await conn.fetch(SQL.unseen_in_flight, after, batch):
            seen = await fate(conn, settings, btc, row["chain"], row["txid"], row["psbt"])
            if seen in ("known", "mined", "unsure"):
                if seen == "unsure":
                    log.info("a transfer's transaction may be mined: an input is spent in chain by a transaction "
                             "the indexer has not followed yet; not failed", transfer=str(row["id"]), txid=row["txid"])
                continue
            transfer = await service.lock(conn, row["id"])
            log.warning("a transfer's transaction left the network", transfer=str(transfer.id), txid=transfer.txid,
                        seen=seen)
            failure = {"reverted": f"transaction {transfer.txid} reverted: it moved nothing; send the transfer again",
                       "conflicted": f"transaction {transfer.txid} was replaced: another mined transaction spent its "
                                     "inputs; send the transfer again"}.get(
                seen, f"transaction {transfer.txid} was dropped or replaced; send the transfer again")
            await service.move(conn, transfer, TransferStatus.FAILED, secret=settings.jwt_secret or "",
                               actor=audit.SYSTEM, failure=failure)
            failed += 1
    return failed
