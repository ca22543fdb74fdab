"""EVM transfers sent by a payout hot wallet: its key comes from a secret file (config.PayoutWallet),
never the database or a log, and it sends at most its daily limit per asset. A transaction is signed
and recorded before it is broadcast, so a crash in between broadcasts the same one again (same nonce)
rather than paying twice; nonces come from what beanpay signed and the node's pending count, under a
lock per hot wallet shared by every engine."""

from __future__ import annotations

from typing import Any

import structlog
from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound

from beanpay import audit
from beanpay.chains.evm.artifacts import artifact
from beanpay.config import PayoutWallet, Settings
from beanpay.db import Connection, Database, fetch_as
from beanpay.engine.transfers import service
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL, TransferRow
from beanpay.errors import InvalidInput

log = structlog.get_logger("transfers")
PLATFORM = "platform"
ETH_TRANSFER_GAS = 21_000


def hot_wallet(settings: Settings, transfer: TransferRow) -> PayoutWallet | None:
    """The hot wallet that sends this transfer: the shop's own for money in its wallet, the platform's for
    money the platform holds."""
    owner = PLATFORM if transfer.wallet_id is None else str(transfer.shop_id)
    return settings.payout_wallet(owner, transfer.chain)


async def _transaction(w3: AsyncWeb3[Any], settings: Settings, transfer: TransferRow, sender: str,
                       nonce: int) -> dict[str, Any]:
    chain = settings.evm_chain(transfer.chain)
    assert transfer.amount is not None and transfer.destination is not None
    block = await w3.eth.get_block("latest")
    tip = 10**9
    fees = {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(block["baseFeePerGas"]) + tip}
    base: dict[str, Any] = {"from": sender, "chainId": chain.chain_id, "nonce": nonce, "type": 2, **fees}
    if transfer.token_address is None:
        return {**base, "to": transfer.destination, "value": transfer.amount, "gas": ETH_TRANSFER_GAS}
    token = w3.eth.contract(address=AsyncWeb3.to_checksum_address(transfer.token_address),
                            abi=artifact("TestUSDC")["abi"])  # the ERC-20 transfer ABI
    call = token.functions.transfer(transfer.destination, transfer.amount)
    tx: Any = await call.build_transaction({**base, "gas": 100_000})  # type: ignore[arg-type]
    tx["gas"] = int(await w3.eth.estimate_gas({k: v for k, v in tx.items() if k != "gas"}) * 12 // 10)  # type: ignore[arg-type]
    return dict(tx)


async def send_due(db: Database, settings: Settings, *, batch: int = 20) -> int:
    """Sign, record and broadcast the approved hot-wallet transfers; returns how many went out."""
    secret = settings.jwt_secret or ""
    async with db.transaction() as conn:
        for transfer in await fetch_as(conn, SQL.due_sends, TransferRow, batch):
            wallet = hot_wallet(settings, transfer)
            limit = int(wallet.daily_limits.get(transfer.asset, "0")) if wallet else 0
            if wallet is None:
                await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                                   failure="no payout hot wallet for this shop and chain; sign it yourself")
                continue
            account = Account.from_key(wallet.key)
            await conn.execute(SQL.lock_sender, account.address)
            assert transfer.amount is not None
            sent = int(await conn.fetchval(SQL.sent_today, account.address, transfer.chain, transfer.asset))
            if sent + transfer.amount > limit:
                await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                                   failure=f"the hot wallet's daily limit of {limit} {transfer.asset} base units "
                                           f"would be passed ({sent} sent in the last 24 h)")
                continue
            chain = settings.evm_chain(transfer.chain)
            w3 = AsyncWeb3(AsyncHTTPProvider(chain.rpc_url))
            try:
                nonce = max(int(await w3.eth.get_transaction_count(account.address, "pending")),
                            int(await conn.fetchval(SQL.next_nonce, account.address, transfer.chain)))
                tx = account.sign_transaction(await _transaction(w3, settings, transfer, account.address, nonce))
            finally:
                await w3.provider.disconnect()
            raw = "0x" + bytes(tx.raw_transaction).hex()
            txid = "0x" + bytes(tx.hash).hex()
            await conn.execute(SQL.set_signed, transfer.id, raw, txid, account.address, nonce)
    return await broadcast_signed(db, settings)


async def broadcast_signed(db: Database, settings: Settings, *, batch: int = 50) -> int:
    """Broadcast every signed transfer not yet recorded as sent (again, after a crash: the same bytes),
    and record it in flight."""
    secret = settings.jwt_secret or ""
    done = 0
    async with db.acquire() as conn:
        pending = await conn.fetch(SQL.signed_unsent, batch)
    for row in pending:
        async with db.transaction() as conn:
            transfer = await service.lock(conn, row["id"])
            if transfer.status != TransferStatus.SENDING or transfer.txid is None:
                continue
            w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(transfer.chain).rpc_url))
            try:
                await w3.eth.send_raw_transaction(row["signed_tx"])
            except Exception as exc:  # "already known" / "nonce too low" for one that went out before
                if not any(s in str(exc).lower() for s in ("already known", "nonce too low")):
                    log.warning("transfer broadcast failed; retried", transfer=str(transfer.id), error=str(exc)[:300])
                    continue
            finally:
                await w3.provider.disconnect()
            await service.sent(conn, transfer, transfer.txid, secret=secret, actor=audit.SYSTEM)
            done += 1
    return done


TRANSFER_SELECTOR = "a9059cbb"  # ERC-20 transfer(address,uint256)


def expected_call(transfer: TransferRow) -> tuple[str, int, str]:
    """(to, value, data) of the transaction that sends this transfer: a plain transfer of ETH, or the
    token's transfer(destination, amount). Pure."""
    assert transfer.amount is not None and transfer.destination is not None
    if transfer.token_address is None:
        return transfer.destination, transfer.amount, "0x"
    data = TRANSFER_SELECTOR + transfer.destination[2:].lower().rjust(64, "0") + format(transfer.amount, "064x")
    return AsyncWeb3.to_checksum_address(transfer.token_address), 0, "0x" + data


async def submit_external(conn: Connection, settings: Settings, transfer: TransferRow, tx_hash: str, *,
                          actor: audit.Actor) -> TransferRow:
    """The merchant sent the transfer from its own wallet: the node's copy of the transaction must be
    exactly the expected call (recipient, value and data); then it is in flight, and the indexer sees
    it arrive like any other."""
    w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(transfer.chain).rpc_url))
    try:
        tx = await w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    except TransactionNotFound:
        raise InvalidInput("the transaction is not known", [
            {"field": "tx_hash", "message": "the node does not know this transaction (yet); send it first"}]) from None
    finally:
        await w3.provider.disconnect()
    to, value, data = expected_call(transfer)
    got_data = "0x" + bytes(tx["input"]).hex() if not isinstance(tx["input"], str) else tx["input"]
    if (tx.get("to") or "").lower() != to.lower() or int(tx["value"]) != value or got_data.lower() != data.lower():
        raise InvalidInput("the transaction is not this transfer", [
            {"field": "tx_hash", "message": f"it must call {to} with value {value} and data {data}"}])
    return await service.sent(conn, transfer, tx_hash.lower(), secret=settings.jwt_secret or "", actor=actor)
