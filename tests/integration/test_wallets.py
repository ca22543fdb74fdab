"""Merchants' own wallets: set per shop and chain, checked, used by new orders only; the gap limit kept
with addresses of unpaid, expired orders recycled after a quarantine."""

from __future__ import annotations

import uuid

from embit import script
from embit.networks import NETWORKS
from eth_account import Account

from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.evm.create2 import forwarder_address
from beanpay.engine.sweeps import run_sweep
from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, place
from tests.integration.merchant_wallet import MerchantWallet

pytest_plugins = ["tests.integration.engine_support"]

MAINNET_ZPUB = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtK"
                "sAYz2oz2AGutZYs")


def fields(body: dict) -> set[str]:  # type: ignore[type-arg]
    return {f["field"] for f in body["error"]["fields"]}


async def set_wallet(api, headers, shop_id: str, chain: str, body: dict) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    resp = await api.put(f"/v1/shops/{shop_id}/wallets/{chain}", json=body, headers=headers)
    return resp.status, await resp.json()


async def test_a_bitcoin_wallet_is_checked_and_shows_its_first_addresses(api, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    merchant = MerchantWallet()
    status, body = await set_wallet(api, shop.merchant, shop.id, "btc", {"account_key": MAINNET_ZPUB})
    assert status == 422 and fields(body) == {"account_key"} and "mainnet" in body["error"]["fields"][0]["message"]
    private = merchant.account.to_string()
    status, body = await set_wallet(api, shop.merchant, shop.id, "btc", {"account_key": private})
    assert status == 422 and "private" in body["error"]["fields"][0]["message"]
    assert private not in str(body)
    status, body = await set_wallet(api, shop.merchant, shop.id, "btc",
                                    {"account_key": merchant.account_key, "key_origin": "[00/84h/1h/0h]"})
    assert status == 422 and body["error"]["fields"][0]["field"] == "key_origin"
    status, body = await set_wallet(api, shop.merchant, shop.id, "btc",
                                    {"account_key": merchant.account_key, "key_origin": merchant.key_origin})
    assert status == 200, body
    # the merchant compares these with its own wallet's first receive addresses
    own = [script.p2wpkh(merchant.account.derive([0, i]).key).address(NETWORKS["regtest"]) for i in range(5)]
    assert body["first_addresses"] == own and body["custodial"] is False and body["gap"] == 0
    resp = await api.get(f"/v1/shops/{shop.id}/wallets", headers=shop.merchant)
    listed = await resp.json()
    assert resp.status == 200 and listed["custodial"] is True  # eth still pays into the platform's wallet
    assert {w["chain"]: w["custodial"] for w in listed["wallets"]} == {"btc": False, "eth": True}
    # staff see nothing of it (managers and integrations may look but not change it: the access matrix)
    assert (await api.get(f"/v1/shops/{shop.id}/wallets", headers=shop.staff)).status == 403


async def test_an_evm_treasury_must_be_checksummed(api, tokens: Tokens) -> None:
    shop = await make_coffee_shop(api, tokens)
    good = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
    for bad, word in ((good.lower(), "EIP-55"), (good[:-1] + "3", "EIP-55"), ("0x1234", "0x address")):
        status, body = await set_wallet(api, shop.merchant, shop.id, "eth", {"treasury": bad})
        assert status == 422 and fields(body) == {"treasury"} and word in body["error"]["fields"][0]["message"]
    status, body = await set_wallet(api, shop.merchant, shop.id, "eth", {"account_key": MAINNET_ZPUB})
    assert status == 422 and body["error"]["fields"][0]["field"] == "treasury"
    assert (await api.put(f"/v1/shops/{shop.id}/wallets/dogecoin", json={"treasury": good},
                          headers=shop.merchant)).status == 404
    status, body = await set_wallet(api, shop.merchant, shop.id, "eth", {"treasury": good})
    assert status == 200 and body["treasury"] == good and body["custodial"] is False


async def test_orders_pay_into_the_shops_own_bitcoin_wallet_and_a_change_affects_new_orders_only(
        api, tokens: Tokens, db) -> None:
    shop = await make_coffee_shop(api, tokens)
    first, second = MerchantWallet(), MerchantWallet()
    assert (await set_wallet(api, shop.merchant, shop.id, "btc", {"account_key": first.account_key}))[0] == 200
    customer = tokens.header("customer", sub=uuid.uuid4())
    a = await place(api, customer, shop, "btc", "BTC")
    b = await place(api, customer, shop, "btc", "BTC")
    key = Bip84Account(first.account_key, "regtest")
    assert [a["payment"]["address"], b["payment"]["address"]] == [key.derive(0).address, key.derive(1).address]
    # the money is the merchant's alone: its own private key (held only here, on the test side) owns the
    # address, and the server stores nothing but the account's public key
    own = script.p2wpkh(first.account.derive([0, 0]).key.get_public_key()).address(NETWORKS["regtest"])
    assert own == a["payment"]["address"]
    stored = await db.fetch("SELECT account_key, key_origin, treasury FROM wallets WHERE shop_id = $1",
                            uuid.UUID(shop.id))
    assert stored and all(r["account_key"].startswith("vpub") and "prv" not in str(dict(r)) for r in stored)
    assert (await set_wallet(api, shop.merchant, shop.id, "btc", {"account_key": second.account_key}))[0] == 200
    c = await place(api, customer, shop, "btc", "BTC")
    assert c["payment"]["address"] == Bip84Account(second.account_key, "regtest").derive(0).address
    rows = await db.fetch("""SELECT w.address, w.wallet_id, p.wallet_id AS paid_into, w.key_chain
                             FROM watched_addresses w JOIN crypto_payments p ON p.wallet_address = w.address
                             WHERE w.order_id = ANY($1::uuid[]) ORDER BY p.created_at""",
                          [uuid.UUID(o["id"]) for o in (a, b, c)])
    assert len(rows) == 3 and all(r["wallet_id"] == r["paid_into"] and r["key_chain"] == 0 for r in rows)
    assert rows[0]["wallet_id"] == rows[1]["wallet_id"] != rows[2]["wallet_id"]  # the old addresses stay watched
    # back to the platform's wallet: custodial again
    assert (await api.delete(f"/v1/shops/{shop.id}/wallets/btc", headers=shop.merchant)).status == 204
    d = await place(api, customer, shop, "btc", "BTC")
    assert await db.fetchval("SELECT wallet_id FROM crypto_payments WHERE order_id = $1", uuid.UUID(d["id"])) is None


async def test_the_gap_limit_is_kept_and_unpaid_expired_addresses_are_recycled(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    merchant = MerchantWallet()
    status, _ = await set_wallet(api, shop.merchant, shop.id, "btc", {"account_key": merchant.account_key,
                                                                       "gap_limit": 2})
    assert status == 200
    customer = tokens.header("customer", sub=uuid.uuid4())
    a = await place(api, customer, shop, "btc", "BTC")
    await place(api, customer, shop, "btc", "BTC")
    body = {"shop_id": shop.id, "items": [{"product_id": shop.product_id, "quantity": 1,
                                           "customizations": {"size": ["small"]}}],
            "payment": {"chain": "btc", "asset": "BTC"}}
    resp = await api.post("/v1/orders", json=body, headers=customer)
    refused = await resp.json()
    assert resp.status == 503 and refused["error"]["detail"]["reason"] == "wallet_gap_limit", refused
    wallet = (await (await api.get(f"/v1/shops/{shop.id}/wallets", headers=shop.merchant)).json())["wallets"][0]
    assert wallet["gap"] == 2 and wallet["gap_limit"] == 2
    # order a expires unpaid; once its quarantine is over its address goes to the next order
    await db.execute("UPDATE crypto_payments SET expires_at = now() - interval '2 hours', status = 'expired' "
                     "WHERE order_id = $1", uuid.UUID(a["id"]))
    await db.execute("UPDATE coffee_orders SET order_status = 'expired', payment_status = 'expired' WHERE id = $1",
                     uuid.UUID(a["id"]))
    c = await place(api, customer, shop, "btc", "BTC")
    assert c["payment"]["address"] == a["payment"]["address"]
    assert await db.fetchval("SELECT address_released_at IS NOT NULL FROM crypto_payments WHERE order_id = $1",
                             uuid.UUID(a["id"]))
    # a late payment for order a, to the recycled address, counts for the order now holding it (c)
    await btc_wallet.pay(a["payment"]["address"], int(a["payment"]["amount"]))
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    assert (await get_order(api, customer, c["id"]))["payment_status"] == "confirmed"
    assert (await get_order(api, customer, a["id"]))["payment_status"] == "expired"
    # and the gap moved: index 0 is used now
    wallet = (await (await api.get(f"/v1/shops/{shop.id}/wallets", headers=shop.merchant)).json())["wallets"][0]
    assert wallet["gap"] == 1


async def test_a_shops_own_treasury_receives_its_swept_funds(
        api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings) -> None:
    chain = chain_settings.evm_chains[0]
    shop = await make_coffee_shop(api, tokens)
    treasury = Account.create().address  # a merchant's own address; the server holds no key for it
    assert (await set_wallet(api, shop.merchant, shop.id, "eth", {"treasury": treasury}))[0] == 200
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    assert order["payment"]["address"] == forwarder_address(chain.factory, chain.implementation,
                                                            uuid.UUID(order["id"]), treasury)
    payer = anvil(1)
    before_shop = await payer.w3.eth.get_balance(treasury)
    before_platform = await payer.w3.eth.get_balance(chain.treasury)
    await payer.pay_eth(order["payment"]["address"], int(order["payment"]["amount"]))
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    assert (await get_order(api, customer, order["id"]))["status"] == "confirmed"
    balances = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
    assert balances["balances"] == [{"chain": "eth", "asset": "ETH", "balance": order["payment"]["amount"],
                                     "decimals": 18, "custodial": False}]  # held in the shop's own wallet
    others = sum([await payer.w3.eth.get_balance(r["wallet_address"]) for r in await db.fetch(
        """SELECT wallet_address FROM crypto_payments WHERE chain = 'eth' AND sweep_id IS NULL AND wallet_id IS NULL
           AND amount_received > 0 AND (status IN ('confirmed', 'overpaid') OR resolution = 'accepted')""")])
    assert await run_sweep(chain_settings, "eth", batch=50, dry_run=False) == 0
    assert await payer.w3.eth.get_balance(treasury) == before_shop + int(order["payment"]["amount"])
    assert await payer.w3.eth.get_balance(chain.treasury) == before_platform + others  # none of the shop's
