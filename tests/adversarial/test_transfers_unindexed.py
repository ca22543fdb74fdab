"""Bitcoin transfers judged by a node without a transaction index (Bitcoin Core's default; only the dev
btcd runs -txindex). Such a node answers "unknown" for a transaction that is mined, exactly as for one
that was dropped, so an attacker who holds a refund's signed transaction (the merchant of a shop, or the
customer) broadcasts it and has it mined, then asks for the refund to be failed, sent again or cancelled
before the indexer has followed the block: paid twice, or paid and credited back. What must hold: a
transfer is failed, sent again or cancelled only when its transactions provably cannot be mined (every
input unspent in chain and in no mempool: still to be replaced; or an input spent by another mined
transaction); one whose input a mined transaction spends is its own until the indexer says which."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import pytest
from embit import ec, script
from embit.networks import NETWORKS

from beanpay import audit
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import Settings
from beanpay.engine.transfers import approval, cancellation, service, watchdog
from beanpay.errors import Conflict
from tests.adversarial.test_transfers_retried import EXTRA, dropped_bitcoin_refund, sent_to
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, make_coffee_shop, place
from tests.integration.merchant_wallet import connected_wallet

pytest_plugins = ["tests.integration.engine_support"]


class WithoutTxindex(BitcoinRpc):
    """The dev btcd answering as a node without -txindex does: getrawtransaction finds only what is in
    its mempool (Bitcoin Core: -5 "No such mempool transaction"), and getindexinfo lists no index."""

    async def call(self, method: str, *params: Any) -> Any:
        if method == "getindexinfo":
            return {}
        if method == "getrawtransaction" and len(params) < 3 and params[0] not in await super().call("getrawmempool"):
            raise RpcError(method, -5, "No such mempool transaction. Use -txindex or provide a block hash to "
                                       "enable blockchain transaction queries.")
        return await super().call(method, *params)


def without_txindex(settings: Settings) -> WithoutTxindex:
    return WithoutTxindex(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or "")


async def status_of(db: Any, transfer_id: str) -> str:
    return str(await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(transfer_id)))


async def refund_in_flight(api: Any, tokens: Tokens, btc_wallet: Any, btc_follower: Any,
                           engine: Any) -> tuple[Shop, str, str, str]:
    """A Bitcoin overpayment refunded from the merchant's own wallet, signed and broadcast (in the node's
    mempool): (shop, refund id, the customer's address, txid)."""
    shop = await make_coffee_shop(api, tokens)
    merchant = await connected_wallet(api, shop)
    order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "btc", "BTC")
    await btc_wallet.pay(order["payment"]["address"], int(order["payment"]["amount"]) + EXTRA)
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant, json={"variant": "overpaid"})
    issued = await resp.json()
    assert resp.status == 201, issued
    to = script.p2wpkh(ec.PrivateKey(secrets.token_bytes(32)).get_public_key()).address(NETWORKS["regtest"])
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": to})
    claimed = await resp.json()
    assert resp.status == 200 and claimed["status"] == "awaiting_signature", claimed
    psbt = (await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json())["psbt"]
    resp = await api.post(f"/v1/refunds/{issued['id']}/signed-psbt", headers=shop.merchant,
                          json={"psbt": merchant.sign(psbt)})
    sent = await resp.json()
    assert resp.status == 200 and sent["status"] == "in_flight", sent
    return shop, issued["id"], to, sent["txid"]


async def after_two_blocks(api: Any, shop: Any, refund_id: str, btc_wallet: Any, btc_follower: Any,
                           engine: Any) -> dict[str, Any]:
    """The refund as the shop sees it once two more blocks are indexed and the engine has run."""
    await btc_wallet.mine(2)
    await btc_follower.sync()
    await engine()
    return dict(await (await api.get(f"/v1/refunds/{refund_id}", headers=shop.merchant)).json())


async def test_a_refund_mined_before_the_indexer_followed_it_is_not_failed_as_dropped(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings: Settings) -> None:
    """The refund's transaction is mined; the indexer has not followed the block yet, and the node keeps no
    transaction index, so it calls the transaction unknown. The watchdog must not fail the refund as
    dropped (a retry would pay the customer again): its inputs are spent in chain, by a transaction the
    indexer has not seen. Once the indexer follows, the refund completes, paid once."""
    shop, refund_id, to, txid = await refund_in_flight(api, tokens, btc_wallet, btc_follower, engine)
    await btc_wallet.mine(1)  # mined; the follower is not synced
    rpc = without_txindex(chain_settings)
    try:
        with pytest.raises(RpcError):
            await rpc.call("getrawtransaction", txid, 0)  # the node says "unknown" of the mined transaction
        await watchdog.fail_dropped(db, chain_settings, rpc, after=dt.timedelta(0))
        assert await status_of(db, refund_id) == "in_flight"
        await btc_follower.sync()  # the indexer now records which transaction spent the inputs: its own
        await watchdog.fail_dropped(db, chain_settings, rpc, after=dt.timedelta(0))
        assert await status_of(db, refund_id) == "in_flight"
    finally:
        await rpc.close()
    done = await after_two_blocks(api, shop, refund_id, btc_wallet, btc_follower, engine)
    assert done["status"] == "completed" and done["txid"] == txid, done
    assert await sent_to(db, to) == EXTRA


async def test_a_failed_refund_whose_own_transaction_was_mined_is_neither_cancelled_nor_sent_again(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings: Settings) -> None:
    """The refund failed as dropped; whoever kept its transaction broadcasts it and it is mined. Before the
    engine follows it, the merchant asks to cancel (which would credit the refund back while the customer
    has the money) and to send it again (which would pay twice): both are refused, before the indexer saw
    the block (an input spent by a transaction not yet known) and after (spent by the refund's own
    transaction), although the node calls the transaction unknown. Then it completes, paid once."""
    shop, _, refund_id, to, _, old_raw, old_txid = await dropped_bitcoin_refund(
        api, tokens, db, btc_wallet, btc_follower, engine, chain_settings)
    await btc_wallet.rpc.call("sendrawtransaction", old_raw)
    await btc_wallet.mine(1)
    rpc = without_txindex(chain_settings)
    try:
        for synced in (False, True):
            if synced:
                await btc_follower.sync()  # output_spends: the inputs spent by old_txid; the engine not run
            with pytest.raises(Conflict) as refused:
                async with db.transaction() as conn:
                    refund = await service.lock(conn, uuid.UUID(refund_id))
                    assert refund.status == "failed"
                    await cancellation.cancel(conn, chain_settings, rpc, refund, operator=False, not_sent=False,
                                              actor=audit.SYSTEM)
            assert old_txid in str(refused.value)
            with pytest.raises(Conflict):
                async with db.transaction() as conn:
                    refund = await service.lock(conn, uuid.UUID(refund_id))
                    await approval.resend(conn, chain_settings, refund, btc=rpc, actor=audit.SYSTEM)
            assert await status_of(db, refund_id) == "failed"
            assert await db.fetchval("SELECT psbt IS NOT NULL FROM transfers WHERE id = $1", uuid.UUID(refund_id))
    finally:
        await rpc.close()
    done = await after_two_blocks(api, shop, refund_id, btc_wallet, btc_follower, engine)
    assert done["status"] == "completed" and done["txid"] == old_txid, done
    assert await sent_to(db, to) == EXTRA
