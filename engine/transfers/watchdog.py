"""Refund and payout transactions that left the network: one in flight that the indexer never saw arrive, and that
the node no longer knows (dropped from its mempool, or replaced by another spending the same coins or
nonce), fails, so the merchant can send it again. A transfer is never failed while its transaction may
still be mined: only the node's "unknown" counts, and a transaction seen at its destination is
left to the indexer and the reorg handling."""

from __future__ import annotations

import datetime as dt

import structlog
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound

from beanpay import audit
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import Settings
from beanpay.db import Database
from beanpay.engine.transfers import service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL

log = structlog.get_logger("transfers")


async def _known(settings: Settings, btc: BitcoinRpc, chain: str, txid: str) -> bool:
    if chain == service.BITCOIN:
        try:
            await btc.call("getrawtransaction", txid, 0)
            return True
        except RpcError as exc:
            if exc.code in (-5, -8):  # no such transaction (Bitcoin Core and btcd both answer -5)
                return False
            raise
    w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(chain).rpc_url))
    try:
        await w3.eth.get_transaction(txid)  # type: ignore[arg-type]
        return True
    except TransactionNotFound:
        return False
    finally:
        await w3.provider.disconnect()


async def fail_dropped(db: Database, settings: Settings, btc: BitcoinRpc, *, after: dt.timedelta,
                       batch: int = 50) -> int:
    """Fail the transfers whose transactions the network dropped; returns how many."""
    failed = 0
    async with db.transaction() as conn:
        for row in await conn.fetch(SQL.unseen_in_flight, after, batch):
            if await _known(settings, btc, row["chain"], row["txid"]):
                continue
            transfer = await service.lock(conn, row["id"])
            log.warning("a transfer's transaction left the network", transfer=str(transfer.id), txid=transfer.txid)
            await service.move(conn, transfer, TransferStatus.FAILED, secret=settings.jwt_secret or "",
                               actor=audit.SYSTEM,
                               failure=f"transaction {transfer.txid} was dropped or replaced; send the transfer again")
            failed += 1
    return failed
