"""Refunds on real nodes: claimed by the customer with their own address, sent from the wallet the
payment went to (a PSBT the merchant's wallet signs; a payout hot wallet for EVM), followed to
confirmation by the indexer, debited from the shop's ledger once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
from embit import ec, script
from embit.networks import NETWORKS
from embit.psbt import PSBT
from eth_account import Account

from beanpay.config import PayoutWallet
from beanpay.engine.transfers import evm
from tests import secrets_watch
from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, pay_directly, place
from tests.integration.merchant_wallet import connected_wallet

pytest_plugins = ["tests.integration.engine_support"]
BIN = Path(sys.executable).parent


def customer_btc_address() -> str:
    return script.p2wpkh(ec.PrivateKey(secrets.token_bytes(32)).get_public_key()).address(NETWORKS["regtest"])


def fields(body: dict[str, Any]) -> set[str]:
    return {f["field"] for f in body["error"].get("fields") or []}


async def refund(api: Any, headers: dict[str, str], order_id: str, **body: Any) -> tuple[int, dict[str, Any]]:
    resp = await api.post(f"/v1/orders/{order_id}/refunds", json=body, headers=headers)
    return resp.status, await resp.json()


async def claim(api: Any, token: str, address: str) -> tuple[int, dict[str, Any]]:
    resp = await api.post(f"/v1/refund-claims/{token}", json={"address": address})
    return resp.status, await resp.json()


async def ledger_kinds(db: Any, refund_id: str) -> list[tuple[str, str, int]]:
    rows = await db.fetch("SELECT kind, account, amount FROM ledger_entries WHERE transfer_id = $1 ORDER BY id",
                          uuid.UUID(refund_id))
    return [(r["kind"], r["account"].split(":")[0], int(r["amount"])) for r in rows]


async def wallet_balance(settings: Any, shop_id: str) -> list[dict[str, str]]:
    """`beanpay wallet balance --shop S --json`, as an operator runs it."""
    env = {**os.environ, "BEANPAY_DATABASE_URL": settings.dsn}
    done = await asyncio.to_thread(subprocess.run, [str(BIN / "beanpay"), "wallet", "balance", "--shop", shop_id,
                                                     "--json"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return list(msgspec.json.decode(done.stdout))


async def test_a_bitcoin_overpayment_is_refunded_by_a_psbt_the_merchant_signs(
        api, tokens: Tokens, db, btc_wallet, btc_follower, engine, chain_settings) -> None:
    shop = await make_coffee_shop(api, tokens)
    merchant = await connected_wallet(api, shop)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "btc", "BTC")
    due = int(order["payment"]["amount"])
    await btc_wallet.pay(order["payment"]["address"], due + 150_000)  # 150,000 sats too many
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    assert (await get_order(api, customer, order["id"]))["payment_status"] == "overpaid"
    before = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()

    status, issued = await refund(api, shop.merchant, order["id"], variant="overpaid")
    assert status == 201 and issued["status"] == "awaiting_claim" and issued["amount"] == "150000", issued
    token = issued["claim_token"]
    # the customer's address is checked for the network and its checksum
    mainnet = script.p2wpkh(ec.PrivateKey(secrets.token_bytes(32)).get_public_key()).address(NETWORKS["main"])
    status, body = await claim(api, token, mainnet)
    assert status == 422 and fields(body) == {"address"} and "another network" in body["error"]["fields"][0]["message"]
    good = customer_btc_address()
    status, body = await claim(api, token, good[:-1] + ("q" if good[-1] != "q" else "p"))
    assert status == 422 and fields(body) == {"address"} and "checksum" in body["error"]["fields"][0]["message"]
    status, body = await claim(api, token, order["payment"]["address"])
    assert status == 422 and "payment address" in body["error"]["fields"][0]["message"]
    status, claimed = await claim(api, token, good)
    assert status == 200 and claimed["status"] == "awaiting_signature"  # overpaid: approved at once
    detail = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert detail["method"] == "psbt" and detail["psbt"] and not detail["custodial"]

    # a signed PSBT paying another amount or address than approved is refused, and nothing changes
    tampered = PSBT.from_string(detail["psbt"])
    tampered.outputs[0].value -= 1
    resp = await api.post(f"/v1/refunds/{issued['id']}/signed-psbt", headers=shop.merchant,
                          json={"psbt": merchant.sign(tampered.to_string())})
    body = await resp.json()
    assert resp.status == 422 and fields(body) == {"psbt"} and "amounts" in body["error"]["fields"][0]["message"]
    redirected = PSBT.from_string(detail["psbt"])
    redirected.outputs[0].script_pubkey = script.address_to_scriptpubkey(customer_btc_address())
    resp = await api.post(f"/v1/refunds/{issued['id']}/signed-psbt", headers=shop.merchant,
                          json={"psbt": merchant.sign(redirected.to_string())})
    assert resp.status == 422 and "addresses" in (await resp.json())["error"]["fields"][0]["message"]
    assert (await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json())["status"] == \
        "awaiting_signature"

    approved_at = dt.datetime.now(dt.UTC)
    resp = await api.post(f"/v1/refunds/{issued['id']}/signed-psbt", headers=shop.merchant,
                          json={"psbt": merchant.sign(detail["psbt"])})
    sent = await resp.json()
    assert resp.status == 200 and sent["status"] == "in_flight" and sent["txid"], sent
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    done = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert done["status"] == "completed"
    print(f"bitcoin refund: signed to confirmed in {(dt.datetime.now(dt.UTC) - approved_at).total_seconds():.2f} s")
    arrived = await db.fetchrow("SELECT amount, status FROM deposits WHERE address = $1 AND txid = $2", good,
                                sent["txid"])
    assert int(arrived["amount"]) == 150_000 and arrived["status"] == "confirmed"
    # the ledger: debited once when approved, and the money's leaving recorded once
    fee = int(done["network_fee"])
    assert 0 < fee < 10_000
    assert await ledger_kinds(db, issued["id"]) == [("refund", "merchant", 150_000), ("refund", "refunds", -150_000),
                                                    ("refund_sent", "refunds", 150_000),
                                                    ("refund_sent", "deposits", -150_000),
                                                    ("refund_fee", "merchant", fee), ("refund_fee", "deposits", -fee)]
    after = await (await api.get(f"/v1/shops/{shop.id}/balances", headers=shop.merchant)).json()
    assert int(after["balances"][0]["balance"]) == int(before["balances"][0]["balance"]) - 150_000 - fee
    # what the merchant's wallet holds on chain (the payment spent, its change back) is what its ledger says
    await btc_wallet.mine(3)
    await btc_follower.sync()
    holdings = await wallet_balance(chain_settings, shop.id)
    assert [(h["chain"], h["wallet"], h["difference"]) for h in holdings] == [("btc", "own", "0")], holdings
    # a reorg takes the refund's block away: back in flight; mined again: completed, debited still once
    block = await db.fetchval("SELECT block_hash FROM deposits WHERE address = $1 AND txid = $2", good, sent["txid"])
    await btc_wallet.rpc.call("invalidateblock", block)
    await btc_follower.sync()
    await engine()
    assert (await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json())["status"] == \
        "in_flight"
    await btc_wallet.mine(3)
    await btc_follower.sync()
    await engine()
    assert (await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json())["status"] == \
        "completed"
    assert [k for k, _, _ in await ledger_kinds(db, issued["id"])] == ["refund", "refund", "refund_sent",
                                                                        "refund_sent", "refund_fee", "refund_fee"]
    events = [r["event_type"] for r in await db.fetch(
        "SELECT event_type FROM event_outbox WHERE aggregate_id = $1 AND event_type LIKE 'refund.%' ORDER BY id",
        order["id"])]
    assert events == ["refund.created", "refund.claimed", "refund.approved", "refund.in_flight", "refund.completed",
                      "refund.reverted", "refund.completed"]
    spends = await db.fetch("SELECT status FROM output_spends WHERE spending_txid = $1", sent["txid"])
    assert [r["status"] for r in spends] == ["confirmed"]  # orphaned by the reorg, then the same row again
    assert (await wallet_balance(chain_settings, shop.id))[0]["difference"] == "0"
    # the change went back to the merchant's own wallet, at its change chain
    change = await db.fetchrow(
        "SELECT key_chain, derivation_index FROM watched_addresses WHERE purpose = 'change' "
        "AND wallet_id = (SELECT wallet_id FROM transfers WHERE id = $1)", uuid.UUID(issued["id"]))
    assert change["key_chain"] == 1 and change["derivation_index"] == 0


async def _hot_wallet(anvil: Any, shop_id: str) -> PayoutWallet:
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    address = Account.from_key(key).address
    funder = anvil(1)
    await funder.pay_eth(address, 10**18)
    await funder.pay_usdc(address, 10**9)
    return PayoutWallet(owner=shop_id, chain="eth", key=key, daily_limits={"ETH": str(10**17), "tUSDC": str(10**8)})


async def test_evm_overpayments_are_refunded_by_the_shops_payout_hot_wallet(
        make_api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings) -> None:
    plain = await make_api()
    shop = await make_coffee_shop(plain, tokens)
    wallet = await _hot_wallet(anvil, shop.id)
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    treasury = Account.create().address  # the shop's own wallet: the hot wallet is the shop's too
    assert (await api.put(f"/v1/shops/{shop.id}/wallets/eth", json={"treasury": treasury},
                          headers=shop.merchant)).status == 200
    customer = tokens.header("customer", sub=uuid.uuid4())
    payer = anvil(2)
    for asset, extra in (("ETH", 10**15), ("tUSDC", 2_500_000)):
        order = await place(api, customer, shop, "eth", asset)
        due = int(order["payment"]["amount"])
        if asset == "ETH":
            await payer.pay_eth(order["payment"]["address"], due + extra)
        else:
            await payer.pay_usdc(order["payment"]["address"], due + extra)
        await payer.mine(3)
        await eth_follower.sync()
        await engine()
        assert (await get_order(api, customer, order["id"]))["payment_status"] == "overpaid"
        status, issued = await refund(api, shop.merchant, order["id"], variant="overpaid")
        assert status == 201 and issued["amount"] == str(extra)
        destination = Account.create().address
        status, body = await claim(api, issued["claim_token"], destination.lower())
        assert status == 422 and "EIP-55" in body["error"]["fields"][0]["message"]
        status, claimed = await claim(api, issued["claim_token"], destination)
        assert status == 200 and claimed["status"] == "sending"
        started = dt.datetime.now(dt.UTC)
        assert await evm.send_due(db, settings) == 1
        assert await evm.send_due(db, settings) == 0  # sent once, whatever runs again
        await payer.mine(3)
        await eth_follower.sync()
        await engine()
        done = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
        assert done["status"] == "completed" and done["method"] == "hot_wallet", done
        print(f"{asset} refund: approval to confirmed in {(dt.datetime.now(dt.UTC) - started).total_seconds():.2f} s")
        got = (await payer.w3.eth.get_balance(destination) if asset == "ETH"
               else await payer.usdc.functions.balanceOf(destination).call())
        assert got == extra
        # the gas the hot wallet paid is the refund's network fee (a token refund's gas is ETH: not charged)
        gas = ["refund_fee", "refund_fee"] if asset == "ETH" else []
        assert [k for k, _, _ in await ledger_kinds(db, issued["id"])] == ["refund", "refund", "refund_sent",
                                                                            "refund_sent", *gas]
        assert (done["network_fee"] is not None) == (asset == "ETH"), done


async def test_bad_refunds_are_refused_with_the_field_at_fault_and_change_nothing(
        make_api, tokens: Tokens, db, engine) -> None:
    api = await make_api(refund_claim_seconds=1)
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    received = int(order["payment"]["amount"])
    await pay_directly(db, order)
    await engine()
    status, body = await refund(api, shop.merchant, order["id"], variant="custom", amount=str(received + 1))
    assert status == 422 and fields(body) == {"amount"} and "refundable rest" in body["error"]["fields"][0]["message"]
    status, body = await refund(api, shop.merchant, order["id"], variant="overpaid")
    assert status == 422 and fields(body) == {"variant"}
    status, body = await refund(api, shop.merchant, order["id"], variant="fiat_fixed")
    assert status == 422 and fields(body) == {"fiat_amount"}
    assert await db.fetchval("SELECT count(*) FROM transfers WHERE order_id = $1", uuid.UUID(order["id"])) == 0
    # staff may not refund
    assert (await refund(api, shop.staff, order["id"], variant="crypto_paid"))[0] == 403
    # a custom refund needs approval, once
    status, issued = await refund(api, shop.merchant, order["id"], variant="custom", amount=str(2 * 10**13),
                                  fee_bps=500)
    assert status == 201 and issued["amount"] == str(19 * 10**12)
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 409  # not claimed yet
    status, claimed = await claim(api, issued["claim_token"], Account.create().address)
    assert status == 200 and claimed["status"] == "awaiting_approval"
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "awaiting_signature"
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert resp.status == 409 and (await resp.json())["error"]["detail"]["current_status"] == "awaiting_signature"
    assert [k for k, _, _ in await ledger_kinds(db, issued["id"])] == ["refund", "refund"]
    # cancelled after approval: the platform's wallet may have sent it, so only an operator stating that it
    # did not; the shop gets it back
    resp = await api.post(f"/v1/refunds/{issued['id']}/cancel", headers=shop.merchant)
    assert resp.status == 409
    resp = await api.post(f"/v1/refunds/{issued['id']}/cancel", headers=tokens.operator)
    assert resp.status == 422 and fields(await resp.json()) == {"not_sent"}
    resp = await api.post(f"/v1/refunds/{issued['id']}/cancel", headers=tokens.operator, json={"not_sent": True})
    assert resp.status == 200
    assert sum(a for k, acct, a in await ledger_kinds(db, issued["id"]) if acct == "merchant") == 0
    # an expired link: 410, nothing changed; an unknown one: 404
    status, late = await refund(api, shop.merchant, order["id"], variant="custom", amount=str(10**13))
    await asyncio.sleep(1.1)
    status, body = await claim(api, late["claim_token"], Account.create().address)
    assert status == 410
    assert (await db.fetchval("SELECT status FROM transfers WHERE id = $1", uuid.UUID(late["id"]))) == "awaiting_claim"
    assert (await claim(api, "A" * 43, Account.create().address))[0] == 404


async def test_twenty_concurrent_refunds_never_exceed_what_the_payment_received(
        api, tokens: Tokens, db, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    received = int(order["payment"]["amount"])
    await pay_directly(db, order)
    await engine()
    share = received // 10 + 1  # nine fit, the tenth would pass what was received
    results = await asyncio.gather(*(refund(api, shop.merchant, order["id"], variant="custom", amount=str(share))
                                     for _ in range(20)))
    created = [b for s, b in results if s == 201]
    refused = [b for s, b in results if s == 422]
    assert len(created) == 9 and len(refused) == 11, [s for s, _ in results]
    assert all(fields(b) == {"amount"} for b in refused)
    held = await db.fetchval("SELECT sum(amount) FROM transfers WHERE order_id = $1", uuid.UUID(order["id"]))
    assert held == 9 * share <= received


async def test_a_paid_order_not_yet_in_preparation_is_cancelled_with_its_refund(api, tokens: Tokens, db,
                                                                                 engine) -> None:
    shop = await make_coffee_shop(api, tokens, stock=10)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH", quantity=2)
    await pay_directly(db, order)
    await engine()
    stock = await db.fetchval("SELECT quantity FROM coffee_supplies WHERE id = $1", uuid.UUID(shop.supply_id))
    assert stock == 8
    assert (await api.post(f"/v1/orders/{order['id']}/cancel", headers=shop.staff)).status == 403
    assert (await api.post(f"/v1/orders/{order['id']}/cancel", headers=customer)).status == 403
    resp = await api.post(f"/v1/orders/{order['id']}/cancel", headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    assert await db.fetchval("SELECT quantity FROM coffee_supplies WHERE id = $1", uuid.UUID(shop.supply_id)) == 10
    listed = await (await api.get(f"/v1/shops/{shop.id}/refunds", headers=shop.merchant)).json()
    (made,) = [r for r in listed["items"] if r["order_id"] == order["id"]]
    assert made["variant"] == "crypto_paid" and made["amount"] == order["payment"]["amount"]
    assert made["status"] == "awaiting_claim" and made["claim_token"]
    # the barista sees the refund but not its link: whoever holds it chooses where the money goes
    seen = await (await api.get(f"/v1/refunds/{made['id']}", headers=shop.staff)).json()
    assert seen["status"] == "awaiting_claim" and seen["claim_token"] is None and seen["claim_url"] is None
    # an order in preparation is the shop's to finish: no cancel
    other = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, other)
    await engine()
    resp = await api.post(f"/v1/orders/{other['id']}/status", json={"status": "preparing"}, headers=shop.staff)
    assert resp.status == 200
    assert (await api.post(f"/v1/orders/{other['id']}/cancel", headers=shop.merchant)).status == 409


async def test_an_evm_refund_sent_from_the_merchants_own_wallet(
        api, tokens: Tokens, db, anvil, eth_follower, engine) -> None:
    shop = await make_coffee_shop(api, tokens)
    merchant = anvil(2)  # the merchant's own wallet, holding its treasury's funds; the server has no key to it
    assert (await api.put(f"/v1/shops/{shop.id}/wallets/eth", json={"treasury": merchant.account.address},
                          headers=shop.merchant)).status == 200
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "tUSDC")
    payer = anvil(1)
    paid_tx = await payer.pay_usdc(order["payment"]["address"], int(order["payment"]["amount"]))
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    status, issued = await refund(api, shop.merchant, order["id"], variant="custom", amount="1250000")
    assert status == 201
    destination = Account.create().address
    assert (await claim(api, issued["claim_token"], destination))[0] == 200
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    approved = await resp.json()
    assert resp.status == 200 and approved["method"] == "external" and approved["status"] == "awaiting_signature"
    unsigned = approved["unsigned_transaction"]
    assert approved["payment_uri"] == (f"ethereum:{unsigned['to']}@{unsigned['chain_id']}/transfer"
                                       f"?address={destination}&uint256=1250000")
    # a transaction that is not this refund is refused
    resp = await api.post(f"/v1/refunds/{issued['id']}/transaction", json={"tx_hash": paid_tx},
                          headers=shop.merchant)
    assert resp.status == 422 and fields(await resp.json()) == {"tx_hash"}
    await payer.pay_usdc(merchant.account.address, 1_250_000)
    sent = await merchant.send({"to": unsigned["to"], "data": unsigned["data"], "value": int(unsigned["value"])})
    resp = await api.post(f"/v1/refunds/{issued['id']}/transaction", json={"tx_hash": sent}, headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "in_flight"
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    done = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert done["status"] == "completed"
    assert await payer.usdc.functions.balanceOf(destination).call() == 1_250_000


async def test_a_dropped_hot_wallet_transaction_fails_the_refund_and_it_is_sent_again(
        make_api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings) -> None:
    from beanpay.chains.bitcoin.rpc import BitcoinRpc
    from beanpay.engine.transfers import watchdog

    plain = await make_api()
    shop = await make_coffee_shop(plain, tokens)
    wallet = await _hot_wallet(anvil, shop.id)
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    assert (await api.put(f"/v1/shops/{shop.id}/wallets/eth", json={"treasury": Account.create().address},
                          headers=shop.merchant)).status == 200
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    payer = anvil(2)
    await payer.pay_eth(order["payment"]["address"], int(order["payment"]["amount"]) + 10**14)
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    _, issued = await refund(api, shop.merchant, order["id"], variant="overpaid")
    destination = Account.create().address
    assert (await claim(api, issued["claim_token"], destination))[1]["status"] == "sending"
    btc = BitcoinRpc(chain_settings.btc_rpc, chain_settings.btcd_rpc_user, chain_settings.btcd_rpc_password or "")
    await payer.rpc("evm_setAutomine", [False])
    try:
        assert await evm.send_due(db, settings) == 1
        first = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
        assert first["status"] == "in_flight"
        await payer.rpc("anvil_dropTransaction", [first["txid"]])  # the network forgets it
        assert await watchdog.fail_dropped(db, settings, btc, after=dt.timedelta(0)) == 1
    finally:
        await payer.rpc("evm_setAutomine", [True])
        await btc.close()
    failed = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert failed["status"] == "failed" and "dropped" in failed["failure"]
    resp = await api.post(f"/v1/refunds/{issued['id']}/retry", headers=shop.merchant)
    assert resp.status == 200 and (await resp.json())["status"] == "sending"
    assert await evm.send_due(db, settings) == 1
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    done = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert done["status"] == "completed"  # (signed afresh; with the same nonce and fees it may be the same bytes)
    assert await payer.w3.eth.get_balance(destination) == 10**14  # paid once
    assert [k for k, _, _ in await ledger_kinds(db, issued["id"])] == ["refund", "refund", "refund_sent",
                                                                        "refund_sent", "refund_fee", "refund_fee"]


async def test_fiat_refunds_are_converted_at_todays_rate_or_at_approval(api, tokens: Tokens, db, engine) -> None:
    """The static rate here is 3,200 USD per ETH: 1.00 USD is 312,500,000,000,000 wei exactly."""
    shop = await make_coffee_shop(api, tokens, price="10.00")
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    status, today = await refund(api, shop.merchant, order["id"], variant="fiat_today")
    assert status == 201 and today["fiat_amount"] == "10.00" and today["amount"] == str(10 * 312_500_000_000_000)
    assert today["rate"] == "3200"
    assert (await api.post(f"/v1/refunds/{today['id']}/cancel", headers=shop.merchant)).status == 200
    status, fixed = await refund(api, shop.merchant, order["id"], variant="fiat_fixed", fiat_amount="1.00",
                                 fee_bps=1000)
    assert status == 201 and fixed["amount"] is None  # fixed at approval, at that moment's rate
    assert (await claim(api, fixed["claim_token"], Account.create().address))[1]["status"] == "awaiting_approval"
    resp = await api.post(f"/v1/refunds/{fixed['id']}/approve", headers=shop.merchant)
    approved = await resp.json()
    assert resp.status == 200 and approved["amount"] == str(312_500_000_000_000 * 9 // 10), approved
    assert approved["rate"] == "3200"


async def test_a_hot_wallet_never_sends_past_its_daily_limit(make_api, tokens: Tokens, db, engine,
                                                              chain_settings) -> None:
    key = "0x" + secrets.token_hex(32)
    secrets_watch.watch(key)
    wallet = PayoutWallet(owner="platform", chain="eth", key=key, daily_limits={"ETH": str(10**13 - 1)})
    settings = msgspec.structs.replace(chain_settings, payout_wallets=[wallet])
    api = await make_api(payout_wallets=[wallet])
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    order = await place(api, customer, shop, "eth", "ETH")
    await pay_directly(db, order)
    await engine()
    _, issued = await refund(api, shop.merchant, order["id"], variant="custom", amount=str(10**13))
    assert (await claim(api, issued["claim_token"], Account.create().address))[0] == 200
    resp = await api.post(f"/v1/refunds/{issued['id']}/approve", headers=shop.merchant)
    assert (await resp.json())["status"] == "sending"
    assert await evm.send_due(db, settings) == 0  # 10^13 wei would pass the 10^13 - 1 a day
    failed = await (await api.get(f"/v1/refunds/{issued['id']}", headers=shop.merchant)).json()
    assert failed["status"] == "failed" and "daily limit" in failed["failure"] and failed["txid"] is None
