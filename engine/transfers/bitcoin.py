"""Bitcoin transfers: one PSBT from the wallet the money is in (a refund alone; payouts batched, one
output each), for the wallet's owner to sign; the signed one checked against it and broadcast. The server
holds no key: the merchant's wallet, or for the platform's wallet the operator's, signs."""

from __future__ import annotations

import uuid

from beanpay import audit, queries
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.bitcoin.psbt import Coin, PsbtRefused, Signer, build, finalize, select
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import addresses, wallets
from beanpay.engine.transfers import service
from beanpay.engine.transfers.refunds import check_destination
from beanpay.engine.transfers.service import SQL, TransferRow
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


def fee_shares(fee: int, n: int) -> list[int]:
    """A transaction's fee split between the transfers it sends (the first takes the remainder). Pure."""
    share, rest = divmod(fee, n)
    return [share + rest, *([share] * (n - 1))]


async def prepare(conn: Connection, settings: Settings, rpc: BitcoinRpc, transfers: list[TransferRow], *,
                  batched: bool = False) -> list[TransferRow]:
    """Build one PSBT paying every one of `transfers` (rows locked by the caller, all from one wallet):
    confirmed outputs of the wallet the node also sees unspent, the node's fee rate, change to the
    wallet's next change address. `batched` (payouts): the transfers share a batch id, and each its share
    of the fee."""
    wallet_id = transfers[0].wallet_id
    assert all(t.wallet_id == wallet_id and t.amount and t.destination for t in transfers)
    signer, account_key = await _signer(conn, settings, wallet_id)
    rows = await conn.fetch(SQL.spendable, transfers[0].chain, wallet_id)
    try:
        live = [r for r in rows if await rpc.unspent(r["txid"], r["output_index"])]
        fee_rate = await rpc.fee_rate(FEE_TARGET_BLOCKS, settings.btc_fee_rate_floor)
    except RpcError as exc:
        raise Unavailable("the Bitcoin node cannot answer now; try again shortly", reason=str(exc)) from None
    coins = [Coin(r["txid"], r["output_index"], int(r["amount"]), bytes(r["script"]), r["key_chain"],
                  r["derivation_index"]) for r in live]
    pays = []
    for t in transfers:
        script = check_destination(t.chain, t.destination or "", settings.btc_network)[1]
        assert script is not None and t.amount is not None
        pays.append((script, t.amount))
    index = int(await conn.fetchval(WALLET_SQL.next_change if wallet_id else WALLET_SQL.platform_next_change,
                                    *([wallet_id] if wallet_id else [])))
    change = Bip84Account(account_key, settings.btc_network).derive_change(index)
    try:
        picked, fee, rest = select(coins, pays, change.script, fee_rate)
    except ValueError as exc:
        raise Conflict(f"cannot build the transaction: {exc}") from None
    psbt = build(picked, pays, (change.script, rest, index) if rest else None, signer)
    if rest:
        await addresses.watch(conn, transfers[0].chain, change.address, change.script, index, key_chain=1,
                              wallet_id=wallet_id, purpose="change")
    batch = uuid.uuid4() if batched else None
    for t, share in zip(transfers, fee_shares(fee, len(transfers)), strict=True):
        await conn.execute(SQL.hold_inputs, t.id, t.chain, [c.txid for c in picked], [c.vout for c in picked])
        await conn.execute(SQL.set_psbt, t.id, psbt, share, index if rest else None, batch)
    return [await service.lock(conn, t.id) for t in transfers]


async def submit(conn: Connection, rpc: BitcoinRpc, transfers: list[TransferRow], signed: str, *, secret: str,
                 actor: audit.Actor) -> list[TransferRow]:
    """The owner's signed PSBT for these transfers (one transaction): refused unless it pays exactly what
    was approved; then broadcast, and each in flight. It is sent before commit; were the commit lost,
    uploading the same PSBT again finds it already on the network and records it."""
    built = transfers[0].psbt
    if built is None or any(t.psbt != built for t in transfers):
        raise Conflict("there is no PSBT to sign for this")
    try:
        raw, txid = finalize(built, signed)
    except PsbtRefused as exc:
        raise InvalidInput("the signed PSBT does not match what was approved",
                           [{"field": exc.field, "message": exc.message}]) from None
    after = [await service.sent(conn, t, txid, secret=secret, actor=actor) for t in transfers]
    try:
        await rpc.broadcast(raw)
    except RpcError as exc:
        if "already" not in exc.message.lower():  # in the mempool or a block already: it is sent
            raise InvalidInput("the node refused the transaction", [{"field": "psbt", "message": exc.message}]) \
                from None
    return after
