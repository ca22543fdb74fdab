"""Payouts of custodial balances on real nodes: asked for by the merchant, approved by an operator,
Bitcoin ones batched into one transaction the operator's wallet signs, EVM ones sent by the platform's
payout hot wallet; followed to confirmation, debited from the ledger once."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
from embit import bip32, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from eth_account import Account

from beanpay.config import PayoutWallet
from beanpay.deploy.devstack.wallet import account_key
from beanpay.engine.transfers import evm
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, pay_directly, place
from tests.integration.merchant_wallet import MerchantWallet

pytest_plugins = ["tests.integration.engine_support"]
BIN = Path(sys.executable).parent


def operator_sign(settings: Any, psbt: str) -> str:
    """The operator's wallet (the platform's account key, held only on the test side) signs."""
    account = bip32.HDKey.from_string(account_key(settings.state_path).wif_private())
    signed = PSBT.from_string(psbt)
    assert signed.sign_with(account) == len(signed.inputs)
    return str(signed.to_string())


async def balance(api: Any, headers: dict[str, str], shop_id: str, asset: str) -> int:
    body = await (await api.get(f"/v1/shops/{shop_id}/balances", headers=headers)).json()
    return sum(int(b["balance"]) for b in body["balances"] if b["asset"] == asset and b["custodial"])


async def kinds(db: Any, transfer_id: str) -> list[str]:
    return [r["kind"] for r in await db.fetch("SELECT kind FROM ledger_entries WHERE transfer_id = $1 ORDER BY id",
                                              uuid.UUID(transfer_id))]


async def test_bitcoin_payouts_go_out_in_one_transaction_the_operator_signs(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings) -> None:
    shops = [await make_coffee_shop(api, tokens) for _ in range(2)]
    customer = tokens.header("customer", sub=uuid.uuid4())
    for shop in shops:
        order = await place(api, customer, shop, "btc", "BTC")
        await btc_wallet.pay(order["payment"]["address"], int(order["payment"]["amount"]))
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    destinations = [MerchantWallet() for _ in shops]
    made = []
    for shop, own in zip(shops, destinations, strict=True):
        held = await balance(api, shop.merchant, shop.id, "BTC")
        to = script.p2wpkh(own.account.to_public().derive([0, 0]).key).address(NETWORKS["regtest"])
        body = {"chain": "btc", "asset": "BTC", "amount": str(held + 1), "address": to}
        resp = await api.post(f"/v1/shops/{shop.id}/payouts", json=body, headers=shop.merchant)
        assert resp.status == 422 and (await resp.json())["error"]["fields"][0]["field"] == "amount"
        resp = await api.post(f"/v1/shops/{shop.id}/payouts", json={**body, "amount": str(held // 2)},
                              headers=shop.merchant)
        payout = await resp.json()
        assert resp.status == 201 and payout["status"] == "awaiting_approval" and payout["custodial"], payout
        assert (await api.post(f"/v1/payouts/{payout['id']}/approve", headers=shop.merchant)).status == 403
        resp = await api.post(f"/v1/payouts/{payout['id']}/approve", headers=tokens.operator)
        approved = await resp.json()
        assert resp.status == 200 and approved["status"] == "awaiting_signature" and approved["psbt"] is None
        assert await balance(api, shop.merchant, shop.id, "BTC") == held - held // 2  # debited on approval
        made.append((shop, payout, to, held))
    resp = await api.post("/v1/payout-batches", json={"limit": 100}, headers=tokens.operator)
    batch = await resp.json()
    assert resp.status == 201 and {p["id"] for p in batch["payouts"]} >= {p["id"] for _, p, _, _ in made}, batch
    tx = PSBT.from_string(batch["psbt"]).tx
    paid_to = {bytes(o.script_pubkey.data) for o in tx.vout}
    assert len(tx.vout) >= len(made)  # one output per payout (and change)
    resp = await api.post(f"/v1/payout-batches/{batch['batch_id']}/signed-psbt", headers=tokens.operator,
                          json={"psbt": operator_sign(chain_settings, batch["psbt"])})
    sent = await resp.json()
    assert resp.status == 200 and len({p["txid"] for p in sent["payouts"]}) == 1, sent
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    for shop, payout, to, held in made:
        done = await (await api.get(f"/v1/payouts/{payout['id']}", headers=shop.merchant)).json()
        assert done["status"] == "completed"
        arrived = await db.fetchval("SELECT amount FROM deposits WHERE address = $1 AND txid = $2", to, done["txid"])
        assert int(arrived) == held // 2
        assert await kinds(db, payout["id"]) == ["payout", "payout", "payout_sent", "payout_sent", "payout_fee",
                                                 "payout_fee"]
        fee = int(done["network_fee"])
        assert await balance(api, shop.merchant, shop.id, "BTC") == held - held // 2 - fee
    assert len(paid_to) == len(tx.vout)


async def test_evm_payouts_are_sent_by_the_platforms_payout_wallet(
        make_api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings) -> None:
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    hot = Account.from_key(key).address
    await anvil(1).pay_eth(hot, 10**18)
    wallet = PayoutWallet(owner="platform", chain="eth", key=key, daily_limits={"ETH": str(10**18)})
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    assert (await get_order(api, customer, order["id"]))["status"] == "confirmed"
    held = await balance(api, shop.merchant, shop.id, "ETH")
    to = Account.create().address
    half = held // 2  # the rest pays the hot wallet's gas
    resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                          json={"chain": "eth", "asset": "ETH", "amount": str(half), "address": to.lower()})
    assert resp.status == 422 and "EIP-55" in (await resp.json())["error"]["fields"][0]["message"]
    resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                          json={"chain": "eth", "asset": "ETH", "amount": str(half), "address": to})
    payout = await resp.json()
    # a second request cannot ask for the same money again
    resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                          json={"chain": "eth", "asset": "ETH", "amount": str(held - half + 1), "address": to})
    refused = await resp.json()
    assert resp.status == 422 and "above what the platform holds" in refused["error"]["fields"][0]["message"]
    listed = await (await api.get("/v1/payouts", headers=tokens.operator)).json()
    assert payout["id"] in {p["id"] for p in listed["items"]}
    resp = await api.post(f"/v1/payouts/{payout['id']}/approve", headers=tokens.operator)
    assert (await resp.json())["status"] == "sending"
    assert await evm.send_due(db, settings) == 1
    payer = anvil(1)
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    done = await (await api.get(f"/v1/payouts/{payout['id']}", headers=shop.merchant)).json()
    assert done["status"] == "completed" and done["method"] == "hot_wallet"
    assert await payer.w3.eth.get_balance(to) == half
    receipt = await payer.w3.eth.get_transaction_receipt(done["txid"])
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])  # the hot wallet's, the shop's to pay
    assert done["network_fee"] == str(gas)
    assert await balance(api, shop.merchant, shop.id, "ETH") == held - half - gas
    assert await kinds(db, payout["id"]) == ["payout", "payout", "payout_sent", "payout_sent", "payout_fee",
                                             "payout_fee"]


def cli(settings: Any, *args: str) -> Any:
    env = {**os.environ, "BEANPAY_DATABASE_URL": settings.dsn}
    done = subprocess.run([str(BIN / "beanpay"), *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return msgspec.json.decode(done.stdout)


async def test_the_operator_batches_and_submits_bitcoin_payouts_at_the_terminal(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings, tmp_path) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "btc", "BTC")
    await btc_wallet.pay(order["payment"]["address"], int(order["payment"]["amount"]))
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    to = script.p2wpkh(MerchantWallet().account.to_public().derive([0, 0]).key).address(NETWORKS["regtest"])
    resp = await api.post(f"/v1/shops/{shop.id}/payouts", headers=shop.merchant,
                          json={"chain": "btc", "asset": "BTC", "amount": "5000", "address": to})
    payout = await resp.json()
    listed = await asyncio.to_thread(cli, chain_settings, "payouts", "list", "--json")
    assert payout["id"] in {p["id"] for p in listed["payouts"]}
    approved = await asyncio.to_thread(cli, chain_settings, "payouts", "approve", "--id", payout["id"], "--json")
    assert approved["payouts"][0]["status"] == "awaiting_signature"
    dry = await asyncio.to_thread(cli, chain_settings, "payouts", "batch", "--dry-run", "--json")
    assert payout["id"] in {p["id"] for p in dry["payouts"]}
    assert dry["psbt"] is None and int(dry["network_fee"]) > 0
    kept = await db.fetchval("SELECT psbt FROM transfers WHERE id = $1", uuid.UUID(payout["id"]))
    assert kept is None  # a dry run keeps nothing
    out_file = tmp_path / "batch.psbt"
    made = await asyncio.to_thread(cli, chain_settings, "payouts", "batch", "--json", "--psbt-out", str(out_file))
    assert made["batch_id"] and out_file.read_text() == made["psbt"]
    signed = tmp_path / "signed.psbt"
    signed.write_text(operator_sign(chain_settings, made["psbt"]))
    sent = await asyncio.to_thread(cli, chain_settings, "payouts", "submit", "--batch", made["batch_id"],
                                   "--psbt-file", str(signed), "--json")
    assert {p["status"] for p in sent["payouts"]} == {"in_flight"}
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    done = await (await api.get(f"/v1/payouts/{payout['id']}", headers=shop.merchant)).json()
    assert done["status"] == "completed"
