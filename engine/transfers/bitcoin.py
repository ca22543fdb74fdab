"""Bitcoin transfers: one PSBT from the wallet the money is in (a refund alone; payouts batched, one
output each), for the wallet's owner to sign; the signed one checked against it and broadcast. The server
holds no key: the merchant's wallet, or for the platform's wallet the operator's, signs. A transfer sent
again after its transaction was dropped spends that transaction's inputs again (replaceable, at a higher
fee): the two conflict, so only one can ever be mined, whoever broadcasts the old one."""

from __future__ import annotations

import uuid
from typing import Literal

from beanpay import audit, queries
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.bitcoin.psbt import DUST, Coin, PsbtRefused, Signer, build, finalize, select, vsize
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import addresses, wallets
from beanpay.engine.lifecycle import IllegalTransition
from beanpay.engine.transfers import service, tracking
from beanpay.engine.transfers.refunds import check_destination
from beanpay.engine.transfers.rules import TransferStatus
from beanpay.engine.transfers.service import SQL, TransferRow
from beanpay.errors import Conflict, InvalidInput, Unavailable

WALLET_SQL = queries.load("beanpay.engine", "wallets.sql")
FEE_TARGET_BLOCKS = 6
INCREMENTAL_RELAY = 1  # sat/vB a replacement pays above what it replaces (BIP125 rule 4, nodes' default)


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


def select_replacing(required: list[Coin], others: list[Coin], pays: list[tuple[bytes, int]], change_script: bytes,
                     fee_rate: int, replaced_fee: int) -> tuple[list[Coin], int, int]:
    """As psbt.select, but spending every `required` coin (the inputs of the transactions this one replaces,
    so it conflicts with them) and then the largest others, for a fee above the `replaced_fee` they paid by
    the relay increment for its own size (else no node takes it in their place). Pure."""
    want = sum(a for _, a in pays)
    scripts = [s for s, _ in pays]

    def fee(n_inputs: int, outs: list[bytes]) -> int:
        size = vsize(n_inputs, outs)
        return max(size * fee_rate, replaced_fee + size * INCREMENTAL_RELAY)

    picked = list(required)
    rest = sorted(others, key=lambda c: (-c.value, c.txid, c.vout))
    while True:
        if picked:
            total = sum(c.value for c in picked)
            with_change = fee(len(picked), [*scripts, change_script])
            if total >= want + with_change + DUST:
                return picked, with_change, total - want - with_change
            if total >= want + fee(len(picked), scripts):
                return picked, total - want, 0
        if not rest:
            raise ValueError(f"the wallet holds {sum(c.value for c in picked)} sats in confirmed outputs beanpay "
                             f"can spend; {want} plus the network fee is needed")
        picked.append(rest.pop(0))


async def _replaced(conn: Connection, rpc: BitcoinRpc,
                    transfers: list[TransferRow]) -> tuple[list[tuple[str, int]], int]:
    """The inputs of the transactions these transfers were sent with before that may still be mined (a
    retry spends them again), and the fees those paid together. Refused while one of them is on the
    network again, mined, or perhaps mined (an input spent in chain by a transaction the indexer has not
    followed yet): that one is followed, nothing is sent in its place."""
    spent: dict[tuple[str, int], None] = {}
    fees: dict[str, int] = {}
    for t in transfers:
        for a in await tracking.attempts(conn, t.id):
            if a.psbt is None or a.txid in fees:
                continue
            seen = await fate(conn, rpc, a.txid, a.psbt)
            if seen in _STILL:
                raise Conflict(f"the transaction {a.txid} {t.kind} {t.id} was sent with before {_STILL[seen]}: "
                               "nothing is sent in its place", txid=a.txid)
            if seen == "dropped":  # a conflicted one can never be mined: nothing to conflict with
                spent.update(dict.fromkeys(tracking.psbt_outpoints(a.psbt)))
                fees[a.txid] = tracking.psbt_fee(a.psbt)
    return list(spent), sum(fees.values())


_STILL = {"known": "is on the network again (it is followed)",
          "mined": "was mined: it pays the transfer, which completes once the indexer follows its block",
          "unsure": "may have been mined: an input of it is spent in chain by a transaction the indexer has "
                    "not followed yet (perhaps this one); try again once it has"}


async def _unspent_in_chain(rpc: BitcoinRpc, txid: str, vout: int) -> bool:
    """Unspent by any mined transaction (a mempool spend, the replaced transaction's own, does not count)."""
    return await rpc.call("gettxout", txid, vout, False) is not None


async def _in_chain(rpc: BitcoinRpc, block_hash: str | None, height: int | None) -> bool:
    """Whether the node's chain still holds this block (the indexer may not have seen a reorg yet)."""
    if block_hash is None or height is None:
        return False
    try:
        return str(await rpc.call("getblockhash", height)) == block_hash
    except RpcError as exc:
        if exc.code in (-1, -8):  # past the node's tip
            return False
        raise


Fate = Literal["known", "mined", "unsure", "dropped", "conflicted"]


async def fate(conn: Connection, rpc: BitcoinRpc, txid: str, psbt: str | None) -> Fate:
    """What became of a transaction of ours. The node's "unknown" alone proves nothing: a node without
    -txindex (Bitcoin Core's default) says it of mined transactions too. "known": the node has it (in its
    mempool; or mined, with an index). Else its inputs (from its `psbt`) tell, in the node's chain: all
    unspent, "dropped" (not mined; anyone who kept it may broadcast it again); spent by this very
    transaction, "mined"; by another, "conflicted" (it can never be mined); by a transaction the indexer
    has not recorded in a block the node still has, "unsure" (the indexer is behind: perhaps this one)."""
    if await _known(rpc, txid):
        return "known"
    if psbt is None:
        return "unsure"
    spent = [o for o in tracking.psbt_outpoints(psbt) if not await _unspent_in_chain(rpc, *o)]
    if not spent:
        return "dropped"
    rows = await conn.fetch(SQL.spenders_of, service.BITCOIN, [t for t, _ in spent], [v for _, v in spent])
    spenders = {str(r["spending_txid"]).lower() for r in rows
                if await _in_chain(rpc, r["block_hash"], r["block_height"])}
    if txid.lower() in spenders:
        return "mined"
    return "conflicted" if spenders else "unsure"


def fee_shares(fee: int, n: int) -> list[int]:
    """A transaction's fee split between the transfers it sends (the first takes the remainder). Pure."""
    share, rest = divmod(fee, n)
    return [share + rest, *([share] * (n - 1))]


async def prepare(conn: Connection, settings: Settings, rpc: BitcoinRpc, transfers: list[TransferRow], *,
                  batched: bool = False) -> list[TransferRow]:
    """Build one PSBT paying every one of `transfers` (rows locked by the caller, all from one wallet):
    confirmed outputs of the wallet the node also sees unspent, the node's fee rate, change to the
    wallet's next change address. `batched` (payouts): the transfers share a batch id, and each its share
    of the fee. Transfers sent before (their transaction dropped) spend that transaction's inputs again
    that no mined transaction spent, at a higher fee: the new one conflicts with the old."""
    wallet_id = transfers[0].wallet_id
    assert all(t.wallet_id == wallet_id and t.amount and t.destination for t in transfers)
    signer, account_key = await _signer(conn, settings, wallet_id)
    rows = await conn.fetch(SQL.spendable, transfers[0].chain, wallet_id)
    try:
        again, replaced_fee = await _replaced(conn, rpc, transfers)
        held = await conn.fetch(SQL.outputs_of, transfers[0].chain, wallet_id, [t for t, _ in again],
                                [v for _, v in again]) if again else []
        live = [r for r in rows if await rpc.unspent(r["txid"], r["output_index"])]
        required_rows = [r for r in held if await _unspent_in_chain(rpc, r["txid"], r["output_index"])]
        fee_rate = await rpc.fee_rate(FEE_TARGET_BLOCKS, settings.btc_fee_rate_floor)
    except RpcError as exc:
        raise Unavailable("the Bitcoin node cannot answer now; try again shortly", reason=str(exc)) from None
    required = [Coin(r["txid"], r["output_index"], int(r["amount"]), bytes(r["script"]), r["key_chain"],
                     r["derivation_index"]) for r in required_rows]
    taken = {(c.txid, c.vout) for c in required}
    coins = [Coin(r["txid"], r["output_index"], int(r["amount"]), bytes(r["script"]), r["key_chain"],
                  r["derivation_index"]) for r in live if (r["txid"], r["output_index"]) not in taken]
    pays = []
    for t in transfers:
        script = check_destination(t.chain, t.destination or "", settings.btc_network)[1]
        assert script is not None and t.amount is not None
        pays.append((script, t.amount))
    index = int(await conn.fetchval(WALLET_SQL.next_change if wallet_id else WALLET_SQL.platform_next_change,
                                    *([wallet_id] if wallet_id else [])))
    change = Bip84Account(account_key, settings.btc_network).derive_change(index)
    try:
        if required:
            picked, fee, rest = select_replacing(required, coins, pays, change.script, fee_rate, replaced_fee)
        else:  # nothing replaced, or nothing it replaced can be mined any more (inputs spent elsewhere)
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
    for t in transfers:  # not a failed one (sent again, it has a new PSBT) nor one paid already
        if t.status != TransferStatus.AWAITING_SIGNATURE:
            raise IllegalTransition(t.kind, t.status, TransferStatus.IN_FLIGHT)
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
        # in the mempool or a block already: it is sent; but "already spent" by another (the one it was
        # to replace, mined or paying more) is a refusal
        if "already" not in exc.message.lower() or await fate(conn, rpc, txid, built) not in ("known", "mined"):
            raise InvalidInput("the node refused the transaction", [{"field": "psbt", "message": exc.message}]) \
                from None
    return after


async def _known(rpc: BitcoinRpc, txid: str) -> bool:
    """Whether the node has the transaction, in its mempool or mined."""
    try:
        await rpc.call("getrawtransaction", txid, 0)
        return True
    except RpcError as exc:
        if exc.code in (-5, -8):  # no such transaction
            return False
        raise
