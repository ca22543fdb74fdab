"""A shop makes the platform pay its network fees: hundreds of tiny refunds or payouts, each costing a
transaction fee far above what it sends, paid by the platform's wallets (EVM hot-wallet gas charged to
no one; Bitcoin fees left as a debt the shared wallet pays). What must hold: a refund or payout sends at
least the asset's minimum (BEANPAY_TRANSFER_MINIMUMS; 422 naming `amount` below it, when it is issued,
when a fiat_fixed refund's amount is fixed at approval, and when a payout is asked for), and the gas a
hot wallet paid for an ETH transfer is the transfer's network fee, debited from the shop whose money
it sent."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import msgspec
from embit import ec, script
from embit.networks import NETWORKS
from eth_account import Account

from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import PayoutWallet, Settings
from beanpay.engine.transfers import evm, watchdog
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import Shop, make_coffee_shop, pay_directly, place

pytest_plugins = ["tests.integration.engine_support"]
MIN_WEI = 10**13  # the default least an ETH transfer sends
MIN_SAT = 1_000
MIN_USDC = 10_000  # 0.01 of a 6-decimal token


def fields(body: dict[str, Any]) -> set[str]:
    return {f["field"] for f in body["error"].get("fields") or []}


async def paid(api: Any, tokens: Tokens, db: Any, engine: Any, shop: Shop, chain: str, asset: str) -> dict[str, Any]:
    order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, chain, asset)
    await pay_directly(db, order)
    await engine()
    return order


async def custodial(api: Any, shop: Shop, asset: str = "ETH") -> int:
    body = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
    return sum(int(b["balance"]) for b in body["balances"] if b["asset"] == asset and b["custodial"])


async def test_a_payout_below_the_assets_minimum_is_refused(api, tokens: Tokens, db, engine, btc_wallet,
                                                            btc_follower) -> None:
    """A custodial shop asks for payouts of one base unit under each asset's minimum: refused, naming
    `amount`; at the minimum they are taken."""
    shop = await make_coffee_shop(api, tokens)
    to = {"eth": Account.create().address,
          "btc": script.p2wpkh(ec.PrivateKey(secrets.token_bytes(32)).get_public_key()).address(NETWORKS["regtest"])}
    for chain, asset, least in (("eth", "ETH", MIN_WEI), ("eth", "tUSDC", MIN_USDC), ("btc", "BTC", MIN_SAT)):
        if chain == "btc":  # a real coin: the platform's wallet spends what it holds in later batches
            order = await place(api, tokens.header("customer", sub=uuid.uuid4()), shop, "btc", "BTC")
            await btc_wallet.pay(order["payment"]["address"], int(order["payment"]["amount"]))
            await btc_wallet.mine(3)
            await btc_follower.sync()
            await engine()
        else:
            await paid(api, tokens, db, engine, shop, chain, asset)
        ask = {"chain": chain, "asset": asset, "address": to[chain]}
        resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                              json={**ask, "amount": str(least - 1)})
        body = await resp.json()
        assert resp.status == 422 and fields(body) == {"amount"}, (asset, body)
        assert str(least) in body["error"]["fields"][0]["message"]
        resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant, json={**ask, "amount": str(least)})
        assert resp.status == 201, (asset, await resp.text())


async def test_a_refund_below_the_assets_minimum_is_refused_when_issued(api, tokens: Tokens, db, engine) -> None:
    """Tiny custom refunds to itself, each costing a fee above what it sends: refused when issued (422
    naming `amount`), whether the amount asked is under the minimum or the fee kept back takes it under."""
    shop = await make_coffee_shop(api, tokens)
    order = await paid(api, tokens, db, engine, shop, "eth", "ETH")
    for body in ({"variant": "custom", "amount": str(MIN_WEI - 1)},
                 {"variant": "custom", "amount": str(MIN_WEI), "fee_bps": 100}):
        resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant, json=body)
        answer = await resp.json()
        assert resp.status == 422 and fields(answer) == {"amount"}, answer
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "custom", "amount": str(MIN_WEI)})
    assert resp.status == 201, await resp.text()


async def test_a_fiat_fixed_refund_worth_less_than_the_minimum_is_refused_at_approval(
        api, tokens: Tokens, db, engine) -> None:
    """A fiat_fixed refund of one cent (its amount fixed at approval, at the rate then: about 3e12 wei)
    is refused at approval, naming `amount`; the shop's balance is untouched."""
    shop = await make_coffee_shop(api, tokens)
    order = await paid(api, tokens, db, engine, shop, "eth", "ETH")
    before = await custodial(api, shop)
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "fiat_fixed", "fiat_amount": "0.01"})
    issued = await resp.json()
    assert resp.status == 201, issued
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": Account.create().address})
    assert resp.status == 200 and (await resp.json())["status"] == "awaiting_approval"
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    body = await resp.json()
    assert resp.status == 422 and fields(body) == {"amount"}, body
    assert await custodial(api, shop) == before


async def hot_wallet_refund(make_api: Any, tokens: Tokens, db: Any, engine: Any, anvil: Any,
                            settings: Settings) -> tuple[Any, Settings, Shop, str, int]:
    """A custodial shop's ETH refund, claimed and approved for the platform's hot wallet to send:
    (api, settings with the hot wallet, shop, refund id, the shop's custodial balance after approval)."""
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    await anvil(1).pay_eth(Account.from_key(key).address, 10**17)
    wallet = PayoutWallet(owner="platform", chain="eth", key=key, daily_limits={"ETH": str(10**17)})
    api = await make_api(payout_wallets=[wallet])
    shop = await make_coffee_shop(api, tokens)
    order = await paid(api, tokens, db, engine, shop, "eth", "ETH")
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "custom", "amount": str(10**14)})
    issued = await resp.json()
    assert resp.status == 201, issued
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": Account.create().address})
    assert resp.status == 200, await resp.text()
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "sending", await resp.text()
    return api, msgspec.structs.replace(settings, payout_wallets=[wallet]), shop, issued["id"], \
        await custodial(api, shop)


async def gas_paid(anvil: Any, db: Any, refund_id: str) -> int:
    txid = await db.fetchval("SELECT txid FROM transfers WHERE id = $1", uuid.UUID(refund_id))
    receipt = await anvil(1).w3.eth.get_transaction_receipt(txid)
    assert receipt["status"] == 1
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


async def fee_entries(db: Any, refund_id: str) -> list[tuple[str, int]]:
    rows = await db.fetch("SELECT asset, amount FROM ledger_entries WHERE transfer_id = $1 AND kind = 'refund_fee' "
                          "AND amount > 0", uuid.UUID(refund_id))
    return [(r["asset"], int(r["amount"])) for r in rows]


async def test_the_gas_a_hot_wallet_paid_for_a_shops_eth_refund_is_debited_from_the_shop(
        make_api, tokens: Tokens, db, engine, anvil, eth_follower, chain_settings: Settings) -> None:
    """The platform's hot wallet sends a custodial shop's ETH refund: the gas it paid (gas used times the
    effective price, from the receipt) is the refund's network fee, debited from the shop once."""
    api, settings, shop, refund_id, approved = await hot_wallet_refund(make_api, tokens, db, engine, anvil,
                                                                      chain_settings)
    assert await evm.send_due(db, settings) == 1
    await anvil(1).mine(3)
    await eth_follower.sync()
    await engine()
    await evm.send_due(db, settings)  # the engine's next poll
    done = await (await api.get(f"/v1/refunds/{refund_id}", headers=shop.merchant)).json()
    gas = await gas_paid(anvil, db, refund_id)
    assert done["status"] == "completed" and done["network_fee"] == str(gas), done
    assert await fee_entries(db, refund_id) == [("ETH", gas)]
    assert await custodial(api, shop) == approved - gas


async def test_gas_learnt_after_the_refund_completed_is_still_debited_once(
        make_api, tokens: Tokens, db, engine, anvil, eth_follower, chain_settings: Settings) -> None:
    """The refund's transaction is mined and the refund completes before the engine reads its receipt
    (sent while blocks were not being made): the gas is debited when it is read, once, however often
    the engine polls."""
    api, settings, shop, refund_id, approved = await hot_wallet_refund(make_api, tokens, db, engine, anvil,
                                                                      chain_settings)
    node = anvil(2)
    await node.rpc("evm_setAutomine", [False])
    try:
        assert await evm.send_due(db, settings) == 1  # broadcast; no receipt yet
        await node.mine(3)
    finally:
        await node.rpc("evm_setAutomine", [True])
    await eth_follower.sync()
    await engine()
    assert await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(refund_id)) == "completed"
    for _ in range(2):
        await evm.send_due(db, settings)
    gas = await gas_paid(anvil, db, refund_id)
    done = await (await api.get(f"/v1/refunds/{refund_id}", headers=shop.merchant)).json()
    assert done["network_fee"] == str(gas), done
    assert await fee_entries(db, refund_id) == [("ETH", gas)]
    assert await custodial(api, shop) == approved - gas


async def test_gas_of_a_hot_wallet_transaction_that_reverted_is_debited_from_the_shop(
        make_api, tokens: Tokens, db, engine, anvil, chain_settings: Settings) -> None:
    """The refund is claimed to a contract that takes no ETH: the hot wallet's transaction reverts, moving
    nothing but costing gas, and may be sent again and again. Each reverted transaction's gas is debited
    from the shop whose refund it was (the refund never completes with it)."""
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    await anvil(1).pay_eth(Account.from_key(key).address, 10**17)
    wallet = PayoutWallet(owner="platform", chain="eth", key=key, daily_limits={"ETH": str(10**17)})
    api = await make_api(payout_wallets=[wallet])
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    shop = await make_coffee_shop(api, tokens)
    order = await paid(api, tokens, db, engine, shop, "eth", "ETH")
    resp = await api.post(f"/v1/orders/{order['id']}/refunds", headers=shop.merchant,
                          json={"variant": "custom", "amount": str(10**14)})
    issued = await resp.json()
    token = chain_settings.evm_chains[0].tokens[0].address  # type: ignore[index]
    resp = await api.post(f"/v1/refund-claims/{issued['claim_token']}", json={"address": token})
    assert resp.status == 200, await resp.text()
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "sending", await resp.text()
    approved = await custodial(api, shop)
    assert await evm.send_due(db, settings) == 1
    await evm.send_due(db, settings)
    txid = await db.fetchval("SELECT txid FROM transfers WHERE id = $1", uuid.UUID(issued["id"]))
    receipt = await anvil(1).w3.eth.get_transaction_receipt(txid)
    assert receipt["status"] == 0
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert await fee_entries(db, issued["id"]) == [("ETH", gas)]
    assert await custodial(api, shop) == approved - gas
    btc = BitcoinRpc(chain_settings.btc_rpc, chain_settings.btcd_rpc_user, chain_settings.btcd_rpc_password or "")
    try:  # the watchdog fails it, to be sent again or cancelled: its gas stays the shop's
        await watchdog.fail_dropped(db, settings, btc, after=dt.timedelta(0))
    finally:
        await btc.close()
    failed = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert failed["status"] == "failed" and "reverted" in failed["failure"], failed
    assert await fee_entries(db, issued["id"]) == [("ETH", gas)]
