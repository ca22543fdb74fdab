"""EVM transfers sent by a payout hot wallet: its key comes from a secret file (config.PayoutWallet),
never the database or a log, and it sends at most its daily limit per asset. A transaction is signed
and recorded before it is broadcast, so a crash in between broadcasts the same one again (same nonce)
rather than paying twice; nonces come from what beanpay signed and the node's pending count, under a
lock per hot wallet shared by every engine. A transfer sent again after its transaction was dropped takes
that transaction's nonce again at higher fees (a replacement), so only one of the two can be mined."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import TransactionNotFound

from beanpay import audit
from beanpay.chains.evm.artifacts import artifact
from beanpay.config import PayoutWallet, Settings
from beanpay.db import Connection, Database, fetch_as, fetchrow_as
from beanpay.engine import ledger, wallets
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.transfers import service, tracking
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL, TransferRow
from beanpay.engine.transfers.tracking import Attempt
from beanpay.errors import InvalidInput

log = structlog.get_logger("transfers")
PLATFORM = "platform"
ETH_TRANSFER_GAS = 21_000
BUMP = (9, 8)  # a replacement's fees: at least 12.5% above the one it replaces (nodes ask for 10%)


def hot_wallet(settings: Settings, transfer: TransferRow) -> PayoutWallet | None:
    """The hot wallet that sends this transfer: the shop's own for money in its wallet, the platform's for
    money the platform holds."""
    owner = PLATFORM if transfer.wallet_id is None else str(transfer.shop_id)
    return settings.payout_wallet(owner, transfer.chain)


def fees_of(signed_tx: str) -> tuple[int, int]:
    """(priority fee, max fee) per gas of a signed EIP-1559 transaction. Pure."""
    tx = TypedTransaction.from_bytes(HexBytes(signed_tx)).as_dict()
    return int(tx["maxPriorityFeePerGas"]), int(tx["maxFeePerGas"])


async def _transaction(w3: AsyncWeb3[Any], settings: Settings, transfer: TransferRow, sender: str,
                       nonce: int, replaces: tuple[int, int] | None = None) -> dict[str, Any]:
    chain = settings.evm_chain(transfer.chain)
    assert transfer.amount is not None and transfer.destination is not None
    block = await w3.eth.get_block("latest")
    tip = 10**9
    if replaces is not None:  # fees above the replaced one's, or nodes keep that one
        tip = max(tip, -(-replaces[0] * BUMP[0] // BUMP[1]))
    max_fee = 2 * int(block["baseFeePerGas"]) + tip
    if replaces is not None:
        max_fee = max(max_fee, -(-replaces[1] * BUMP[0] // BUMP[1]))
    fees = {"maxPriorityFeePerGas": tip, "maxFeePerGas": max_fee}
    base: dict[str, Any] = {"from": sender, "chainId": chain.chain_id, "nonce": nonce, "type": 2, **fees}
    if transfer.token_address is None:
        return {**base, "to": transfer.destination, "value": transfer.amount, "gas": ETH_TRANSFER_GAS}
    token = w3.eth.contract(address=AsyncWeb3.to_checksum_address(transfer.token_address),
                            abi=artifact("TestUSDC")["abi"])  # the ERC-20 transfer ABI
    call = token.functions.transfer(transfer.destination, transfer.amount)
    tx: Any = await call.build_transaction({**base, "gas": 100_000})  # type: ignore[arg-type]
    tx["gas"] = int(await w3.eth.estimate_gas({k: v for k, v in tx.items() if k != "gas"}) * 12 // 10)  # type: ignore[arg-type]
    return dict(tx)


async def _receipt(w3: AsyncWeb3[Any], txid: str) -> Any:
    try:
        return await w3.eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
    except TransactionNotFound:
        return None


@dataclass(frozen=True)
class Replacing:
    """What a transfer's next transaction must be to conflict with the ones it was sent with before: the
    nonce they hold (None: none is still open) at fees above theirs; or `mined`, one of them that was
    mined after all (nothing is to be sent); or `elsewhere`, an open nonce of another sender (a retired
    hot wallet, or the merchant's own wallet) no transaction of ours can take."""

    nonce: int | None = None
    fees: tuple[int, int] | None = None
    mined: str | None = None
    elsewhere: str | None = None


async def replacing(w3: AsyncWeb3[Any], sender: str, earlier: list[Attempt]) -> Replacing:
    """How a transaction from `sender` replaces the transfer's `earlier` ones (asks the node)."""
    nonces = list(dict.fromkeys((a.sender, a.sender_nonce) for a in earlier
                                if a.sender is not None and a.sender_nonce is not None))
    for who, nonce in nonces:
        assert who is not None and nonce is not None
        held = [a for a in earlier if (a.sender, a.sender_nonce) == (who, nonce)]
        if int(await w3.eth.get_transaction_count(AsyncWeb3.to_checksum_address(who), "latest")) > nonce:
            for a in held:  # the nonce is used: by one of these (then it paid), or by another transaction
                receipt = await _receipt(w3, a.txid)
                if receipt is not None and int(receipt["status"]) == 1:
                    return Replacing(mined=a.txid)
            continue  # none of these can be mined any more
        if who.lower() != sender.lower():
            return Replacing(elsewhere=f"{who} (nonce {nonce})")
        fees = [fees_of(a.signed_tx) for a in held if a.signed_tx]
        top = (max(f[0] for f in fees), max(f[1] for f in fees)) if fees else None
        return Replacing(nonce=nonce, fees=top)
    return Replacing()


async def _sign(conn: Connection, w3: AsyncWeb3[Any], settings: Settings, transfer: TransferRow,
                account: LocalAccount, limit: int) -> None:
    """Sign one transfer's transaction and record it (the wallet's lock is held), or fail it, or find
    it paid already by a transaction it was sent with before."""
    secret = settings.jwt_secret or ""
    earlier = await tracking.attempts(conn, transfer.id)
    plan = await replacing(w3, account.address, earlier) if earlier else Replacing()
    if plan.mined is not None:
        await tracking.mined_after_all(conn, transfer.id, plan.mined, secret=secret)
        return
    if plan.elsewhere is not None:
        await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                           failure=f"its earlier transaction from {plan.elsewhere} may still be mined: send it "
                                   "again from that wallet, or spend that nonce first")
        return
    assert transfer.amount is not None
    sent = int(await conn.fetchval(SQL.sent_today, account.address, transfer.chain, transfer.asset, transfer.id))
    if sent + transfer.amount > limit:
        await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                           failure=f"the hot wallet's daily limit of {limit} {transfer.asset} base units "
                                   f"would be passed ({sent} sent or being sent in the last 24 h)")
        return
    nonce = plan.nonce
    if nonce is None:
        nonce = max(int(await w3.eth.get_transaction_count(account.address, "pending")),
                    int(await conn.fetchval(SQL.next_nonce, account.address, transfer.chain)))
    tx = account.sign_transaction(await _transaction(w3, settings, transfer, account.address, nonce, plan.fees))
    raw = "0x" + bytes(tx.raw_transaction).hex()
    txid = "0x" + bytes(tx.hash).hex()
    await conn.execute(SQL.set_signed, transfer.id, raw, txid, account.address, nonce)


async def send_due(db: Database, settings: Settings, *, batch: int = 20) -> int:
    """Sign, record and broadcast the approved hot-wallet transfers, and charge the gas of those mined
    (charge_gas); returns how many went out."""
    secret = settings.jwt_secret or ""
    async with db.transaction() as conn:
        for transfer in await fetch_as(conn, SQL.due_sends, TransferRow, batch):
            wallet = hot_wallet(settings, transfer)
            if wallet is None:
                await service.move(conn, transfer, TransferStatus.FAILED, secret=secret, actor=audit.SYSTEM,
                                   failure="no payout hot wallet for this shop and chain; sign it yourself")
                continue
            account = Account.from_key(wallet.key)
            # one signer per wallet, to commit: what it signed in this batch, or another engine signed
            # and committed meanwhile, is counted against its limit and its nonces
            await conn.execute(SQL.lock_sender, account.address)
            w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(transfer.chain).rpc_url))
            try:
                await _sign(conn, w3, settings, transfer, account, int(wallet.daily_limits.get(transfer.asset, "0")))
            finally:
                await w3.provider.disconnect()
    sent = await broadcast_signed(db, settings)
    await charge_gas(db, settings)
    return sent


async def charge_gas(db: Database, settings: Settings, *, batch: int = 50) -> int:
    """The gas a hot wallet paid for a mined ETH transfer (gas used times the effective price, from its
    receipt) becomes the transfer's network fee, so the shop whose money it sent pays it, like a PSBT's
    fee: the ledger's fee entry is posted when the transfer completes, or now if it completed already or
    its transaction reverted (it never will with it). Once per transaction (a guarded update). A token
    transfer's gas is ETH, not the asset it sends: that is the platform's cost (its minimum bounds it).
    Returns how many were charged."""
    async with db.acquire() as conn:
        rows = await conn.fetch(SQL.ungassed, batch)
    charged = 0
    for row in rows:
        w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(row["chain"]).rpc_url))
        try:
            receipt = await _receipt(w3, row["txid"])
        finally:
            await w3.provider.disconnect()
        if receipt is None:
            continue
        gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
        async with db.transaction() as conn:
            after = await fetchrow_as(conn, SQL.set_gas, TransferRow, row["id"], row["txid"], gas)
            if after is None:
                continue  # charged meanwhile, or sent again with another transaction
            if after.settled_at is not None or int(receipt["status"]) == 0:
                await ledger.post_transfer(conn, after.kind, "fee", shop_id=after.shop_id, chain=after.chain,
                                           asset=after.asset, amount=gas, payment_id=after.payment_id,
                                           transfer_id=after.id, memo=f"network fee of {after.kind} {after.id}",
                                           custodial=after.platform_money)
        charged += 1
    return charged


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


async def payer_of(conn: Connection, settings: Settings, transfer: TransferRow) -> str:
    """The address that must send a transfer made from a wallet of its owner's own: the shop's wallet the
    money is in, or, for the platform's money, the platform's treasury. Refused (422) where none is known:
    a transaction from just anyone would then be taken as paying it."""
    if transfer.platform_money:
        treasury = settings.evm_chain(transfer.chain).treasury
        if treasury is None:
            raise _refused(f"the platform's treasury for {transfer.chain} is not configured (the `treasury` of "
                           "this chain in BEANPAY_EVM_CHAINS), so no sender can be checked: configure it first")
        return treasury
    wallet = None if transfer.wallet_id is None else await wallets.by_id(conn, transfer.wallet_id)
    if wallet is None or wallet.treasury is None:
        raise _refused("the shop's wallet this money is in is not known, so no sender can be checked")
    return wallet.treasury


def _refused(message: str) -> InvalidInput:
    return InvalidInput("the transaction is not this transfer", [{"field": "tx_hash", "message": message}])


async def submit_external(conn: Connection, settings: Settings, transfer: TransferRow, tx_hash: str, *,
                          actor: audit.Actor) -> TransferRow:
    """The merchant (or, for the platform's money, the operator) sent the transfer from its own wallet (the
    row is locked): the node's copy of the transaction must be exactly the expected call (recipient, value
    and data), sent from the wallet the money is in, not reverted, paying no other transfer, and, for a
    transfer sent again, taking the nonce of the one it replaces while that may still be mined; then it is
    in flight, and the indexer sees it arrive like any other."""
    if transfer.status != TransferStatus.AWAITING_SIGNATURE:
        raise IllegalTransition(transfer.kind, transfer.status, TransferStatus.IN_FLIGHT)
    tx_hash = tx_hash.lower()
    other = await conn.fetchval(SQL.txid_taken, transfer.id, transfer.chain, tx_hash)
    if other is not None:
        raise _refused(f"this transaction already pays transfer {other}: one transaction pays one transfer")
    w3 = AsyncWeb3(AsyncHTTPProvider(settings.evm_chain(transfer.chain).rpc_url))
    try:
        try:
            tx = await w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            raise InvalidInput("the transaction is not known", [
                {"field": "tx_hash",
                 "message": "the node does not know this transaction (yet); send it first"}]) from None
        to, value, data = expected_call(transfer)
        got_data = "0x" + bytes(tx["input"]).hex() if not isinstance(tx["input"], str) else tx["input"]
        if (tx.get("to") or "").lower() != to.lower() or int(tx["value"]) != value or got_data.lower() != data.lower():
            raise _refused(f"it must call {to} with value {value} and data {data}")
        sender, nonce = str(tx["from"]), int(tx["nonce"])
        payer = await payer_of(conn, settings, transfer)
        if sender.lower() != payer.lower():
            raise _refused(f"it was sent from {sender}; the money is in {payer}, which must send it")
        receipt = await _receipt(w3, tx_hash)
        if receipt is not None and int(receipt["status"]) == 0:
            raise _refused("it reverted: it moved nothing")
        earlier = await tracking.attempts(conn, transfer.id)
        plan = await replacing(w3, sender, earlier) if earlier else Replacing()
    finally:
        await w3.provider.disconnect()
    if plan.mined is not None:
        raise _refused(f"the transaction it was sent with before, {plan.mined}, was mined: that one pays it")
    if plan.elsewhere is not None:
        raise _refused(f"its earlier transaction from {plan.elsewhere} may still be mined: send this one from "
                       "that wallet with that nonce, so only one of them can be")
    if plan.nonce is not None and nonce != plan.nonce:
        raise _refused(f"its earlier transaction may still be mined: send this one with nonce {plan.nonce}, "
                       "replacing it, so only one of them can be")
    try:
        after = await service.sent(conn, transfer, tx_hash, secret=settings.jwt_secret or "", actor=actor)
    except asyncpg.UniqueViolationError:  # another transfer recorded it at the same moment
        raise _refused("this transaction already pays another transfer: one transaction pays one transfer") \
            from None
    await conn.execute(SQL.set_sender, transfer.id, sender, nonce)
    return after
