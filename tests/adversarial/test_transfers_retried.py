"""A transfer whose transaction was dropped is sent again; whoever kept the first transaction (the customer
saw it before it left the mempool) broadcasts it once more, hoping both confirm. What must hold: the retry
conflicts with what it replaces (Bitcoin: it spends the same inputs, replaceable, at a higher fee; EVM: the
same nonce at higher fees), so at most one of the two is ever mined, and the transfer and the ledger follow
whichever it was: completed once, by the transaction that confirmed, with that transaction's fee."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import msgspec
from embit import ec, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from eth_account import Account
from web3 import AsyncWeb3

from beanpay import audit
from beanpay.chains.bitcoin.psbt import RBF_SEQUENCE
from beanpay.chains.bitcoin.rpc import BitcoinRpc, RpcError
from beanpay.config import PayoutWallet, Settings
from beanpay.engine.transfers import bitcoin, evm, service, watchdog
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, make_coffee_shop, pay_directly, place
from tests.integration.merchant_wallet import MerchantWallet, connected_wallet

pytest_plugins = ["tests.integration.engine_support"]
EXTRA = 150_000  # sats overpaid, refunded


class KeptFromTheNetwork:
    """A node that took the transaction and lost it (restarted, or its mempool evicted it): beanpay
    records it in flight, the node never has it; the raw transaction is kept, as anyone who saw it may."""

    def __init__(self) -> None:
        self.raw = ""

    async def broadcast(self, raw_hex: str) -> str:
        self.raw = raw_hex
        return ""


def psbt_fee(psbt: str) -> int:
    p = PSBT.from_string(psbt)
    return sum(i.witness_utxo.value for i in p.inputs) - sum(o.value for o in p.tx.vout)


def psbt_inputs(psbt: str) -> set[tuple[str, int]]:
    return {(i.txid.hex(), i.vout) for i in PSBT.from_string(psbt).tx.vin}


async def confirmations(rpc: BitcoinRpc, txid: str) -> int:
    try:
        return int((await rpc.call("getrawtransaction", txid, 1)).get("confirmations") or 0)
    except RpcError:
        return 0


async def sent_to(db: Any, address: str) -> int:
    return int(await db.fetchval("SELECT coalesce(sum(amount), 0) FROM deposits WHERE address = $1 "
                                 "AND status = 'confirmed'", address))


async def ledger(db: Any, refund_id: str) -> list[tuple[str, int]]:
    """The refund's ledger entries that debit an account (one of each pair), in order."""
    rows = await db.fetch("SELECT kind, amount FROM ledger_entries WHERE transfer_id = $1 AND amount > 0 ORDER BY id",
                          uuid.UUID(refund_id))
    return [(r["kind"], int(r["amount"])) for r in rows]


async def dropped_bitcoin_refund(api: Any, tokens: Tokens, db: Any, btc_wallet: Any, btc_follower: Any, engine: Any,
                                 settings: Settings) -> tuple[Shop, MerchantWallet, str, str, str, str, str]:
    """A Bitcoin overpayment refunded by a PSBT the merchant signed, whose transaction the network then
    lost; meanwhile the merchant's wallet received a bigger coin. Returns the shop, its wallet, the refund,
    the customer's address, and the first transaction (its PSBT, raw, txid); the refund is failed, as the
    watchdog finds it."""
    shop = await make_coffee_shop(api, tokens)
    merchant = await connected_wallet(api, shop)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "btc", "BTC")
    await btc_wallet.pay(order["payment"]["address"], int(order["payment"]["amount"]) + EXTRA)
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant, json={"variant": "overpaid"})
    issued = await resp.json()
    to = script.p2wpkh(ec.PrivateKey(secrets.token_bytes(32)).get_public_key()).address(NETWORKS["regtest"])
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": to})
    claimed = await resp.json()
    assert resp.status == 200 and claimed["status"] == "awaiting_signature", claimed
    first = (await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json())["psbt"]
    lost = KeptFromTheNetwork()
    async with db.transaction() as conn:
        refund = await service.lock(conn, uuid.UUID(issued["id"]))
        (sent,) = await bitcoin.submit(conn, lost, [refund], merchant.sign(first),  # type: ignore[arg-type]
                                       secret=settings.jwt_secret or "", actor=audit.SYSTEM)
    assert sent.status == "in_flight" and lost.raw
    bigger = await place(api, customer, shop, "btc", "BTC")  # the wallet now holds a bigger coin too
    await btc_wallet.pay(bigger["payment"]["address"], 5_000_000)
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    rpc = BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or "")
    try:
        assert await watchdog.fail_dropped(db, settings, rpc, after=dt.timedelta(0)) >= 1
    finally:
        await rpc.close()
    failed = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert failed["status"] == "failed", failed
    return shop, merchant, issued["id"], to, first, lost.raw, str(sent.txid)


async def once_indexed(api: Any, shop: Any, refund_id: str, follower: Any, engine: Any) -> dict[str, Any]:
    """The refund as the shop sees it once the chain is indexed and the engine has run."""
    await follower.sync()
    await engine()
    return dict(await (await api.get(f"/v1/refunds/{refund_id}", headers=shop.merchant)).json())


async def test_a_retried_bitcoin_refund_conflicts_with_the_dropped_transaction_rebroadcast_after_it(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings: Settings) -> None:
    """The refund is sent again (a new PSBT, signed and broadcast), then the customer broadcasts the first
    transaction too: the retry spends the same inputs at a higher fee, so only one is ever mined, the
    customer is paid once, and the refund completes by the one that confirmed, with its fee."""
    shop, merchant, refund_id, to, old_psbt, old_raw, old_txid = await dropped_bitcoin_refund(
        api, tokens, db, btc_wallet, btc_follower, engine, chain_settings)
    resp = await api.post(f"/v1/refunds/{refund_id}/retry", headers=shop.merchant)
    again = await resp.json()
    assert resp.status == 200 and again["status"] == "awaiting_signature" and again["psbt"], again
    resp = await api.post(f"/v1/refunds/{refund_id}/signed-psbt", headers=shop.merchant,
                          json={"psbt": merchant.sign(again["psbt"])})
    sent = await resp.json()
    assert resp.status == 200 and sent["status"] == "in_flight" and sent["txid"] != old_txid, sent
    rebroadcast = True
    try:
        await btc_wallet.rpc.call("sendrawtransaction", old_raw)
    except RpcError:
        rebroadcast = False  # refused: it conflicts with the retry, which pays more
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    mined = [t for t in (old_txid, sent["txid"]) if await confirmations(btc_wallet.rpc, t) > 0]
    assert len(mined) == 1, (mined, rebroadcast)
    assert not rebroadcast and mined == [sent["txid"]]
    assert await sent_to(db, to) == EXTRA  # paid once
    done = await (await api.get(f"/v1/refunds/{refund_id}", headers=shop.merchant)).json()
    assert done["status"] == "completed" and done["txid"] == mined[0], done
    fee = psbt_fee(old_psbt if mined[0] == old_txid else again["psbt"])
    assert int(done["network_fee"]) == fee
    assert await ledger(db, refund_id) == [("refund", EXTRA), ("refund_sent", EXTRA), ("refund_fee", fee)]
    # the retry conflicts with the first: a shared input, replaceable, a higher fee
    assert all(i.sequence == RBF_SEQUENCE for i in PSBT.from_string(again["psbt"]).tx.vin)
    assert psbt_inputs(again["psbt"]) & psbt_inputs(old_psbt)
    assert psbt_fee(again["psbt"]) > psbt_fee(old_psbt)


async def test_a_dropped_bitcoin_refund_mined_after_its_retry_was_built_completes_by_it(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings: Settings) -> None:
    """The customer broadcasts the first transaction after the retry's PSBT was built but before the
    merchant signs it, and it is mined: the refund completes by that transaction (its fee on the ledger),
    and the retry, signed afterwards, is refused and never broadcast."""
    shop, merchant, refund_id, to, old_psbt, old_raw, old_txid = await dropped_bitcoin_refund(
        api, tokens, db, btc_wallet, btc_follower, engine, chain_settings)
    resp = await api.post(f"/v1/refunds/{refund_id}/retry", headers=shop.merchant)
    again = await resp.json()
    assert resp.status == 200 and again["status"] == "awaiting_signature", again
    await btc_wallet.rpc.call("sendrawtransaction", old_raw)
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    done = await (await api.get(f"/v1/refunds/{refund_id}", headers=shop.merchant)).json()
    assert done["status"] == "completed" and done["txid"] == old_txid, done
    assert int(done["network_fee"]) == psbt_fee(old_psbt)
    resp = await api.post(f"/v1/refunds/{refund_id}/signed-psbt", headers=shop.merchant,
                          json={"psbt": merchant.sign(again["psbt"])})
    assert resp.status in (409, 422), await resp.text()
    await btc_wallet.mine(1)
    await btc_follower.sync()
    await engine()
    assert await sent_to(db, to) == EXTRA  # paid once
    assert await ledger(db, refund_id) == [("refund", EXTRA), ("refund_sent", EXTRA),
                                           ("refund_fee", psbt_fee(old_psbt))]


async def test_a_retried_hot_wallet_refund_reuses_the_nonce_of_the_dropped_transaction(
        make_api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings: Settings) -> None:
    """The shop's hot wallet sent a refund whose transaction was dropped; it sent another refund since
    (the next nonce), then the first is retried, and someone broadcasts the first transaction again: the
    retry took the dropped one's nonce at higher fees, so the old one is refused and the customer is paid
    once."""
    plain = await make_api()
    shop = await make_coffee_shop(plain, tokens)
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    await anvil(1).pay_eth(Account.from_key(key).address, 10**18)
    wallet = PayoutWallet(owner=shop.id, chain="eth", key=key, daily_limits={"ETH": str(10**17)})
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    assert (await api.put(f"/v1/shops/{shop.id}/wallets/eth", json={"treasury": Account.create().address},
                          headers=shop.merchant)).status == 200
    customer = tokens.header("customer", sub=uuid.uuid4())

    async def overpaid_refund() -> tuple[str, str]:
        order = await place(api, customer, shop, "eth", "ETH")
        await pay_directly(db, order, int(order["payment"]["amount"]) + 10**14)
        await engine()
        resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                              json={"variant": "overpaid"})
        issued = await resp.json()
        destination = Account.create().address
        resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": destination})
        assert resp.status == 200 and (await resp.json())["status"] == "sending"
        return issued["id"], destination

    first, first_to = await overpaid_refund()
    node = anvil(2)
    btc = BitcoinRpc(chain_settings.btc_rpc, chain_settings.btcd_rpc_user, chain_settings.btcd_rpc_password or "")
    await node.rpc("evm_setAutomine", [False])
    try:
        assert await evm.send_due(db, settings) == 1
        old = await db.fetchrow("SELECT txid, signed_tx FROM transfers WHERE id = $1", uuid.UUID(first))
        await node.rpc("anvil_dropTransaction", [old["txid"]])
        assert await watchdog.fail_dropped(db, settings, btc, after=dt.timedelta(0)) >= 1
        assert (await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(first))) == "failed"
        second, second_to = await overpaid_refund()
        assert await evm.send_due(db, settings) == 1
        resp = await api.post(f"/v1/refunds/{first}/retry", headers=shop.merchant)
        assert resp.status == 200 and (await resp.json())["status"] == "sending"
        assert await evm.send_due(db, settings) == 1
        try:
            await node.rpc("eth_sendRawTransaction", [old["signed_tx"]])
        except RuntimeError:
            pass  # refused: the retry holds its nonce at higher fees
        await node.mine(3)
    finally:
        await node.rpc("evm_setAutomine", [True])
        await btc.close()
    done = await once_indexed(api, shop, first, eth_follower, engine)
    assert await node.w3.eth.get_balance(first_to) == 10**14  # paid once
    assert await node.w3.eth.get_balance(second_to) == 10**14
    assert done["status"] == "completed", done
    assert await ledger(db, first) == [("refund", 10**14), ("refund_sent", 10**14)]
    assert await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(second)) == "completed"


async def test_a_retried_refund_from_the_merchants_own_wallet_must_take_the_dropped_ones_nonce(
        api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings: Settings) -> None:
    """The merchant's own wallet sent a token refund whose transaction was dropped. Sent again, a transaction
    with the next nonce is refused (the dropped one's nonce is still open: both could be mined); one that
    replaces it (the same nonce, higher fees) is taken, the old one broadcast again is refused, and the
    customer is paid once."""
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    merchant = Account.from_key(key)
    node = anvil(1)
    await node.pay_eth(merchant.address, 10**17)
    await node.pay_usdc(merchant.address, 1_250_000)
    shop = await make_coffee_shop(api, tokens)
    resp = await api.put(f"/v1/shops/{shop.id}/wallets/eth", json={"treasury": merchant.address}, headers=shop.merchant)
    assert resp.status == 200
    order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC")
    await node.pay_usdc(order["payment"]["address"], int(order["payment"]["amount"]))
    await node.mine(3)
    await eth_follower.sync()
    await engine()
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "custom", "amount": "1250000"})
    issued = await resp.json()
    destination = Account.create().address
    assert (await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": destination})).status == 200
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    unsigned = (await resp.json())["unsigned_transaction"]
    chain_id = chain_settings.evm_chains[0].chain_id  # type: ignore[index]
    nonce = await node.w3.eth.get_transaction_count(merchant.address, "latest")

    def signed(n: int, tip: int) -> str:
        tx = {"to": AsyncWeb3.to_checksum_address(unsigned["to"]), "data": unsigned["data"],
              "value": int(unsigned["value"]), "gas": 100_000, "chainId": chain_id, "nonce": n,
              "maxFeePerGas": 10 * tip, "maxPriorityFeePerGas": tip}
        return "0x" + bytes(merchant.sign_transaction(tx).raw_transaction).hex()

    async def send(raw: str) -> str:
        return str(await node.rpc("eth_sendRawTransaction", [raw]))

    async def record(tx_hash: str) -> tuple[int, dict[str, Any]]:
        resp = await api.post(f"/v1/refunds/{issued['id']}/transaction", json={"tx_hash": tx_hash},
                              headers=shop.merchant)
        return resp.status, await resp.json()

    btc = BitcoinRpc(chain_settings.btc_rpc, chain_settings.btcd_rpc_user, chain_settings.btcd_rpc_password or "")
    await node.rpc("evm_setAutomine", [False])
    try:
        first = signed(nonce, 10**9)
        status, body = await record(await send(first))
        assert status == 200 and body["status"] == "in_flight", body
        await node.rpc("anvil_dropTransaction", [body["txid"]])
        assert await watchdog.fail_dropped(db, chain_settings, btc, after=dt.timedelta(0)) >= 1
        resp = await api.post(f"/v1/refunds/{issued['id']}/retry", headers=shop.merchant)
        assert resp.status == 200 and (await resp.json())["status"] == "awaiting_signature"
        skipping = await send(signed(nonce + 1, 2 * 10**9))
        status, body = await record(skipping)
        await node.rpc("anvil_dropTransaction", [skipping])
        assert status == 422 and body["error"]["fields"][0]["field"] == "tx_hash", body
        assert f"nonce {nonce}" in body["error"]["fields"][0]["message"]
        status, body = await record(await send(signed(nonce, 2 * 10**9)))
        assert status == 200 and body["status"] == "in_flight", body
        try:
            await send(first)
        except RuntimeError:
            pass  # refused: the replacement pays more
        await node.mine(3)
    finally:
        await node.rpc("evm_setAutomine", [True])
        await btc.close()
    done = await once_indexed(api, shop, issued["id"], eth_follower, engine)
    assert done["status"] == "completed", done
    assert await node.usdc.functions.balanceOf(destination).call() == 1_250_000
