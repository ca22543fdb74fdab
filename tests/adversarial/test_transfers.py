"""Money going out on chain, attacked from outside: refunds claimed together against a hot wallet's daily
limit (in one poll, and by two engines at once), a merchant cancelling a payout the operator may already
have sent, and transactions recorded for a transfer that are not its own (another transfer's hash, another
sender's transaction, a reverted token call). What must hold: a hot wallet never sends past its limit, an
approved payout is cancelled only by an operator who states nothing was sent, and only a successful
transaction from the wallet that holds the money, claimed by no other transfer, pays a transfer."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from typing import Any

import msgspec
from eth_account import Account
from web3 import AsyncWeb3

from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import PayoutWallet, Settings
from beanpay.engine.transfers import evm, watchdog
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support"]
LIMIT = 10**15  # wei a day
SHARE = 6 * 10**14  # 0.6 of the limit: one fits, two do not
PAYOUT = 10**13  # wei: the least an ETH transfer may send by default


def fields(body: dict[str, Any]) -> set[str]:
    return {f["field"] for f in body["error"].get("fields") or []}


async def funded_hot_wallet(anvil: Any, owner: str) -> PayoutWallet:
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    await anvil(1).pay_eth(Account.from_key(key).address, 10**17)
    return PayoutWallet(owner=owner, chain="eth", key=key, daily_limits={"ETH": str(LIMIT)})


async def approved_eth_refund(api: Any, tokens: Tokens, db: Any, engine: Any, shop: Shop,
                              amount: int) -> tuple[str, str]:
    """A paid ETH order of the shop refunded by `amount` wei, claimed and approved: (refund id, destination)."""
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "custom", "amount": str(amount)})
    issued = await resp.json()
    assert resp.status == 201, issued
    destination = Account.create().address
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": destination})
    assert resp.status == 200, await resp.text()
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    approved = await resp.json()
    assert resp.status == 200 and approved["status"] == "sending", approved
    return issued["id"], destination


async def status_of(db: Any, transfer_id: str) -> str:
    return str(await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(transfer_id)))


async def received(anvil: Any, destinations: list[str]) -> int:
    w3 = anvil(1).w3
    return sum([int(await w3.eth.get_balance(d)) for d in destinations])


async def test_three_refunds_claimed_within_one_poll_never_pass_the_hot_wallets_daily_limit(
        make_api, tokens: Tokens, db, engine, anvil, chain_settings: Settings) -> None:
    """Three refunds of 0.6 of the platform hot wallet's daily limit are approved before the engine polls:
    one goes out, the other two fail at the limit (the first, signed earlier in the same poll, counts)."""
    wallet = await funded_hot_wallet(anvil, "platform")
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    shop = await make_coffee_shop(api, tokens)
    made = [await approved_eth_refund(api, tokens, db, engine, shop, SHARE) for _ in range(3)]
    sent = await evm.send_due(db, settings)
    assert await received(anvil, [d for _, d in made]) <= LIMIT
    assert sent == 1
    assert sorted([await status_of(db, r) for r, _ in made]) == ["failed", "failed", "in_flight"]


async def test_two_engines_sending_at_once_never_pass_the_limit_together(
        make_api, tokens: Tokens, db, engine, anvil, chain_settings: Settings) -> None:
    """Two engines poll at the same moment, each taking one of two refunds of 0.6 of the limit: the
    second waits for the first's lock and then counts its signed transaction; one goes out."""
    wallet = await funded_hot_wallet(anvil, "platform")
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    shop = await make_coffee_shop(api, tokens)
    made = [await approved_eth_refund(api, tokens, db, engine, shop, SHARE) for _ in range(2)]
    await asyncio.gather(evm.send_due(db, settings, batch=1), evm.send_due(db, settings, batch=1))
    await evm.broadcast_signed(db, settings)  # whatever either left signed goes out now
    assert await received(anvil, [d for _, d in made]) <= LIMIT
    assert sorted([await status_of(db, r) for r, _ in made]) == ["failed", "in_flight"]


async def custodial_eth_payout(api: Any, tokens: Tokens, db: Any, engine: Any) -> tuple[Shop, dict[str, Any]]:
    """A custodial shop's payout of part of its ETH, approved by an operator: with no payout hot wallet,
    it waits for the operator's own wallet to send it (external)."""
    shop = await make_coffee_shop(api, tokens)
    order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                          json={"chain": "eth", "asset": "ETH", "amount": str(PAYOUT),
                                "address": Account.create().address})
    payout = await resp.json()
    assert resp.status == 201, payout
    return shop, payout


async def test_a_merchant_cannot_cancel_a_payout_the_operator_may_already_have_sent(
        api, tokens: Tokens, db, engine) -> None:
    """The operator approved an EVM payout and may have sent it from the platform's wallet without yet
    recording the hash: the merchant's cancel (which would credit the balance back) is refused; the
    operator cancels only by stating nothing was sent, and that statement is in the audit trail. Before
    approval the merchant still cancels their own request."""
    shop, payout = await custodial_eth_payout(api, tokens, db, engine)
    resp = await api.post(f"/v1/payouts/{payout['id']}/approve", headers=tokens.operator)
    approved = await resp.json()
    assert resp.status == 200 and approved["method"] == "external" and approved["status"] == "awaiting_signature"

    resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=shop.merchant)
    assert resp.status == 409, await resp.text()
    resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=tokens.operator)
    assert resp.status == 422 and fields(await resp.json()) == {"not_sent"}
    resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=shop.merchant, json={"not_sent": True})
    assert resp.status == 409  # the statement is the operator's to make, not the merchant's
    assert await status_of(db, payout["id"]) == "awaiting_signature"
    resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=tokens.operator, json={"not_sent": True})
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    stated = await db.fetchval("SELECT count(*) FROM audit_log WHERE entity_id = $1 AND action = 'payout.not_sent'",
                               payout["id"])
    assert stated == 1

    _, waiting = await custodial_eth_payout(api, tokens, db, engine)
    resp = await api.post(f"/v1/payouts/{waiting['id']}/cancel", headers=shop.merchant)
    assert resp.status == 403  # another shop's payout
    other = await db.fetchval("SELECT shop_id FROM transfers WHERE id = $1", uuid.UUID(waiting["id"]))
    owner = tokens.header("merchant", other)
    resp = await api.post(f"/v1/payouts/{waiting['id']}/cancel", headers=owner)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"


async def test_a_dropped_payout_is_not_cancelled_while_its_transaction_may_still_be_mined(
        make_api, tokens: Tokens, db, engine, anvil, chain_settings: Settings) -> None:
    """The platform's hot wallet sent a payout whose transaction was dropped: whoever kept it may broadcast
    it again, so cancelling it (which credits the shop back) is refused, to the merchant and to an operator
    stating nothing was sent, while that transaction may be mined; once its nonce went to another mined
    transaction, it never can be, and the operator cancels."""
    wallet = await funded_hot_wallet(anvil, "platform")
    api = await make_api(payout_wallets=[wallet])
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    shop, payout = await custodial_eth_payout(api, tokens, db, engine)
    resp = await api.post(f"/v1/payouts/{payout['id']}/approve", headers=tokens.operator)
    assert resp.status == 200 and (await resp.json())["status"] == "sending"
    node = anvil(2)
    hot = Account.from_key(wallet.key)
    btc = BitcoinRpc(chain_settings.btc_rpc, chain_settings.btcd_rpc_user, chain_settings.btcd_rpc_password or "")
    await node.rpc("evm_setAutomine", [False])
    try:
        assert await evm.send_due(db, settings) == 1
        old = await db.fetchrow("SELECT txid, sender_nonce FROM transfers WHERE id = $1", uuid.UUID(payout["id"]))
        await node.rpc("anvil_dropTransaction", [old["txid"]])
        assert await watchdog.fail_dropped(db, settings, btc, after=dt.timedelta(0)) >= 1
        assert await status_of(db, payout["id"]) == "failed"
        resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=shop.merchant)
        assert resp.status == 409
        resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=tokens.operator, json={"not_sent": True})
        assert resp.status == 409 and old["txid"] in (await resp.json())["error"]["message"]
        assert await status_of(db, payout["id"]) == "failed"
        spend = hot.sign_transaction({"to": hot.address, "value": 0, "gas": 21_000, "nonce": old["sender_nonce"],
                                      "chainId": chain_settings.evm_chains[0].chain_id,  # type: ignore[index]
                                      "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**10})
        await node.rpc("eth_sendRawTransaction", ["0x" + bytes(spend.raw_transaction).hex()])
        await node.mine(1)
    finally:
        await node.rpc("evm_setAutomine", [True])
        await btc.close()
    resp = await api.post(f"/v1/payouts/{payout['id']}/cancel", headers=tokens.operator)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"


async def test_the_platforms_money_is_not_recorded_as_sent_from_any_wallet_when_no_treasury_is_configured(
        api, make_api, tokens: Tokens, db, engine, anvil, chain_settings: Settings) -> None:
    """The chain is configured without the platform's treasury, so nothing says which wallet holds the
    platform's money: an approved payout the operator's own wallet sends (external) is not recorded as
    paid by a transaction from just anyone (a stranger's, making the very call asked for), which would let
    the platform's money go out twice. Refused (422 naming `tx_hash`, the message naming the setting), and
    the payout still waits."""
    _, payout = await custodial_eth_payout(api, tokens, db, engine)
    resp = await api.post(f"/v1/payouts/{payout['id']}/approve", headers=tokens.operator)
    approved = await resp.json()
    assert resp.status == 200 and approved["method"] == "external", approved
    chains = [msgspec.structs.replace(c, treasury=None) for c in chain_settings.evm_chains or []]
    untreasured = await make_api(evm_chains=chains)
    stranger = anvil(1)
    sent = await stranger.send({"to": approved["destination"], "value": int(approved["amount"])})
    resp = await untreasured.post(f"/v1/payouts/{payout['id']}/transaction", json={"tx_hash": sent},
                                  headers=tokens.operator)
    body = await resp.json()
    assert resp.status == 422 and fields(body) == {"tx_hash"}, body
    assert "treasury" in body["error"]["fields"][0]["message"]
    assert await status_of(db, payout["id"]) == "awaiting_signature"


async def own_wallet_shop(api: Any, tokens: Tokens, treasury: str) -> Shop:
    shop = await make_coffee_shop(api, tokens)
    resp = await api.put(f"/v1/shops/{shop.id}/wallets/eth", json={"treasury": treasury}, headers=shop.merchant)
    assert resp.status == 200, await resp.text()
    return shop


async def usdc_order(api: Any, tokens: Tokens, anvil: Any, eth_follower: Any, engine: Any,
                     shop: Shop) -> dict[str, Any]:
    order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "eth", "tUSDC")
    payer = anvil(1)
    await payer.pay_usdc(order["payment"]["address"], int(order["payment"]["amount"]))
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    return order


async def external_refund(api: Any, shop: Shop, order: dict[str, Any], destination: str,
                          amount: int = 1_250_000) -> dict[str, Any]:
    """A refund of `amount` token units to `destination`, approved: the merchant's own wallet sends it."""
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "custom", "amount": str(amount)})
    issued = await resp.json()
    assert resp.status == 201, issued
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": destination})
    assert resp.status == 200, await resp.text()
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    approved = await resp.json()
    assert resp.status == 200 and approved["method"] == "external", approved
    return dict(approved)


async def record(api: Any, shop: Shop, refund_id: str, tx_hash: str) -> tuple[int, dict[str, Any]]:
    resp = await api.post(f"/v1/refunds/{refund_id}/transaction", json={"tx_hash": tx_hash}, headers=shop.merchant)
    return resp.status, await resp.json()


async def test_one_transaction_hash_pays_one_transfer(api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    """Two refunds to the same address for the same amount ask for the very same call: the merchant sends
    it once and records its hash for both. The second is refused (the field named): one transaction
    pays one transfer, and only the first completes."""
    merchant = anvil(2)
    shop = await own_wallet_shop(api, tokens, merchant.account.address)
    order = await usdc_order(api, tokens, anvil, eth_follower, engine, shop)
    destination = Account.create().address
    first = await external_refund(api, shop, order, destination)
    second = await external_refund(api, shop, order, destination)
    assert first["unsigned_transaction"] == second["unsigned_transaction"]
    unsigned = first["unsigned_transaction"]
    await anvil(1).pay_usdc(merchant.account.address, 1_250_000)
    sent = await merchant.send({"to": unsigned["to"], "data": unsigned["data"], "value": int(unsigned["value"])})
    status, body = await record(api, shop, first["id"], sent)
    assert status == 200 and body["status"] == "in_flight", body
    status, body = await record(api, shop, second["id"], sent)
    assert status in (409, 422) and fields(body) == {"tx_hash"}, body
    await merchant.mine(3)
    await eth_follower.sync()
    await engine()
    assert await status_of(db, first["id"]) == "completed"
    assert await status_of(db, second["id"]) == "awaiting_signature"
    assert await merchant.usdc.functions.balanceOf(destination).call() == 1_250_000


async def test_a_transaction_from_another_sender_does_not_pay_the_shops_refund(
        api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    """The refund is the shop's money, in its own wallet: a transaction making the very call asked for
    but sent from another account (paid by someone else) is refused, naming the field."""
    merchant = anvil(2)
    shop = await own_wallet_shop(api, tokens, merchant.account.address)
    order = await usdc_order(api, tokens, anvil, eth_follower, engine, shop)
    approved = await external_refund(api, shop, order, Account.create().address)
    unsigned = approved["unsigned_transaction"]
    stranger = anvil(1)
    await stranger.send(await stranger.usdc.functions.mint(stranger.account.address, 1_250_000).build_transaction(
        {"from": stranger.account.address}))
    sent = await stranger.send({"to": unsigned["to"], "data": unsigned["data"], "value": int(unsigned["value"])})
    status, body = await record(api, shop, approved["id"], sent)
    assert status == 422 and fields(body) == {"tx_hash"}, body
    assert "sent from" in body["error"]["fields"][0]["message"]
    assert await status_of(db, approved["id"]) == "awaiting_signature"


async def tokenless_treasury_shop(api: Any, tokens: Tokens, anvil: Any, eth_follower: Any, engine: Any,
                                  settings: Settings) -> tuple[Shop, dict[str, Any], Any]:
    """A shop whose own wallet holds ETH for gas and no tokens, with a paid tUSDC order; and a sender of
    calls from that wallet (returns the hash without waiting for it to be mined)."""
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    treasury = Account.from_key(key)
    funder = anvil(1)
    await funder.pay_eth(treasury.address, 10**17)  # gas only, no tokens
    shop = await own_wallet_shop(api, tokens, treasury.address)
    order = await usdc_order(api, tokens, anvil, eth_follower, engine, shop)
    w3 = funder.w3
    chain_id = settings.evm_chains[0].chain_id  # type: ignore[index]

    async def send_call(unsigned: dict[str, str]) -> str:
        tx = {"from": treasury.address, "to": AsyncWeb3.to_checksum_address(unsigned["to"]),
              "data": unsigned["data"], "value": int(unsigned["value"]), "gas": 100_000, "chainId": chain_id,
              "nonce": await w3.eth.get_transaction_count(treasury.address, "pending"),
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
        signed = treasury.sign_transaction(tx)
        return "0x" + bytes(await w3.eth.send_raw_transaction(signed.raw_transaction)).hex().removeprefix("0x")

    return shop, order, send_call


async def test_a_reverted_token_transfer_is_refused(api, tokens: Tokens, db, anvil, eth_follower, engine,
                                                    chain_settings: Settings) -> None:
    """The shop's wallet makes the refund's exact call but holds no tokens: the call reverts and moves
    nothing. Recorded once mined, it is refused (the field named) and the refund still waits."""
    shop, order, send_call = await tokenless_treasury_shop(api, tokens, anvil, eth_follower, engine, chain_settings)
    approved = await external_refund(api, shop, order, Account.create().address)
    tx_hash = await send_call(approved["unsigned_transaction"])
    receipt = await anvil(1).w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    status, body = await record(api, shop, approved["id"], tx_hash)
    assert status == 422 and fields(body) == {"tx_hash"} and "reverted" in body["error"]["fields"][0]["message"]
    assert await status_of(db, approved["id"]) == "awaiting_signature"


async def test_a_reverted_token_transfer_recorded_while_pending_fails_the_refund(
        api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings: Settings) -> None:
    """The same reverting call recorded while it is still pending is in flight (nothing to tell yet); once
    it is mined reverted, the watchdog fails the refund (to be sent again): it is never completed."""
    shop, order, send_call = await tokenless_treasury_shop(api, tokens, anvil, eth_follower, engine, chain_settings)
    approved = await external_refund(api, shop, order, Account.create().address)
    node = anvil(1)
    btc = BitcoinRpc(chain_settings.btc_rpc, chain_settings.btcd_rpc_user, chain_settings.btcd_rpc_password or "")
    await node.rpc("evm_setAutomine", [False])
    try:
        tx_hash = await send_call(approved["unsigned_transaction"])
        status, body = await record(api, shop, approved["id"], tx_hash)
        assert status == 200 and body["status"] == "in_flight", body
        await node.mine(3)
    finally:
        await node.rpc("evm_setAutomine", [True])
    try:
        assert (await node.w3.eth.get_transaction_receipt(tx_hash))["status"] == 0
        await eth_follower.sync()
        await engine()
        await watchdog.fail_dropped(db, chain_settings, btc, after=dt.timedelta(0))
    finally:
        await btc.close()
    assert await status_of(db, approved["id"]) == "failed"
    failure = await db.fetchval("SELECT failure FROM transfers WHERE id = $1", uuid.UUID(approved["id"]))
    assert "reverted" in failure
