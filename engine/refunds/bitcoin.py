"""Bitcoin refunds: a PSBT from the wallet the payment went to, for its owner to sign; the signed one
checked against it and broadcast. The server holds no key: the merchant's wallet (or, for custodial
shops, the operator's) signs."""

from __future__ import annotations

import uuid

from beanpay import audit, queries
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.bitcoin.psbt import Coin, PsbtRefused, Signer, build, finalize, select
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import addresses, wallets
from beanpay.engine.refunds import service
from beanpay.engine.refunds.service import SQL, RefundRow
from beanpay.errors import Conflict, InvalidInput, Unavailable

WALLET_SQL = queries.load("beanpay.engine", "wallets.sql")
FEE_TARGET_BLOCKS = 6


async def _signer(conn: Connection, settings: Settings, wallet_id: uuid.UUID | None) -> tuple[Signer, str]:
    if wallet_id is None:
        if not settings.btc_account_xpub:
            raise Conflict("the platform's Bitcoin wallet is not configured")
        origin = wallets.parse_origin(settings.btc_account_origin, settings.btc_network) \
            if settings.btc_account_origin else None
        return Signer.of(settings.btc_account_xpub, origin), settings.btc_account_xpub
    wallet = await wallets.by_id(conn, wallet_id)
    assert wallet is not None and wallet.account_key is not None
    origin = wallets.parse_origin(wallet.key_origin, settings.btc_network) if wallet.key_origin else None
    return Signer.of(wallet.account_key, origin), wallet.account_key


async def prepare(conn: Connection, settings: Settings, rpc: BitcoinRpc, refund: RefundRow) -> RefundRow:
    """Build the refund's PSBT (the refund row is locked by the caller): confirmed outputs of its wallet
    that the node also sees unspent, the node's fee rate, change to the wallet's next change address."""
    assert refund.amount is not None and refund.destination is not None
    signer, account_key = await _signer(conn, settings, refund.wallet_id)
    rows = await conn.fetch(SQL.spendable, refund.chain, refund.wallet_id)
    try:
        live = [r for r in rows if await rpc.unspent(r["txid"], r["output_index"])]
        fee_rate = await rpc.fee_rate(FEE_TARGET_BLOCKS, settings.btc_fee_rate_floor)
    except RpcError as exc:
        raise Unavailable("the Bitcoin node cannot answer now; try again shortly", reason=str(exc)) from None
    coins = [Coin(r["txid"], r["output_index"], int(r["amount"]), bytes(r["script"]), r["key_chain"],
                  r["derivation_index"]) for r in live]
    destination = service.check_destination(refund.chain, refund.destination, settings.btc_network)[1]
    assert destination is not None
    index = int(await conn.fetchval(WALLET_SQL.next_change if refund.wallet_id else WALLET_SQL.platform_next_change,
                                    *([refund.wallet_id] if refund.wallet_id else [])))
    change = Bip84Account(account_key, settings.btc_network).derive_change(index)
    try:
        picked, fee, rest = select(coins, [(destination, refund.amount)], change.script, fee_rate)
    except ValueError as exc:
        raise Conflict(f"cannot build the refund: {exc}") from None
    psbt = build(picked, [(destination, refund.amount)], (change.script, rest, index) if rest else None, signer)
    if rest:
        await addresses.watch(conn, refund.chain, change.address, change.script, index, key_chain=1,
                              wallet_id=refund.wallet_id, purpose="change")
    await conn.execute(SQL.hold_inputs, refund.id, refund.chain, [c.txid for c in picked], [c.vout for c in picked])
    await conn.execute(SQL.set_psbt, refund.id, psbt, fee, index if rest else None)
    return await service.lock(conn, refund.id)


async def submit(conn: Connection, rpc: BitcoinRpc, refund: RefundRow, signed: str, *, secret: str,
                 actor: audit.Actor) -> RefundRow:
    """The merchant's signed PSBT: refused unless it pays exactly what was approved; then broadcast and
    in flight. The transaction is sent before commit; were the commit lost, uploading the same PSBT
    again finds it already on the network and records it."""
    if refund.psbt is None:
        raise Conflict("this refund has no PSBT to sign")
    try:
        raw, txid = finalize(refund.psbt, signed)
    except PsbtRefused as exc:
        raise InvalidInput("the signed PSBT does not match the refund", [{"field": exc.field,
                                                                          "message": exc.message}]) from None
    after = await service.sent(conn, refund, txid, secret=secret, actor=actor)
    try:
        await rpc.broadcast(raw)
    except RpcError as exc:
        if "already" not in exc.message.lower():  # in the mempool or a block already: it is sent
            raise InvalidInput("the node refused the transaction", [{"field": "psbt", "message": exc.message}]) \
                from None
    return after
