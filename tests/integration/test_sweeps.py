"""Sweeps: paid orders' forwarders are deployed and flushed to the treasury in one transaction."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec

from beanpay.engine.sweeps import run_sweep
from tests.conftest import Tokens
from tests.integration.engine_support import get_order, make_coffee_shop, place

pytest_plugins = ["tests.integration.engine_support"]
BIN = Path(sys.executable).parent


def sweep_cli(settings: Any, *args: str) -> Any:
    """`beanpay sweep --chain eth --json`, as an operator runs it."""
    env = {**os.environ, "BEANPAY_DATABASE_URL": settings.dsn}
    done = subprocess.run([str(BIN / "beanpay"), "sweep", "--chain", "eth", "--json", *args], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return msgspec.json.decode(done.stdout)


async def test_sweep_moves_paid_funds_to_the_treasury_once(
        api, tokens: Tokens, db, anvil, eth_follower, engine, chain_settings) -> None:
    chain = chain_settings.evm_chains[0]
    shop = await make_coffee_shop(api, tokens)
    customer = tokens.header("customer", sub=uuid.uuid4())
    eth_order = await place(api, customer, shop, "eth", "ETH")
    usdc_order = await place(api, customer, shop, "eth", "tUSDC")
    unpaid = await place(api, customer, shop, "eth", "ETH")
    payer = anvil(1)
    await payer.pay_eth(eth_order["payment"]["address"], int(eth_order["payment"]["amount"]))
    await payer.pay_usdc(usdc_order["payment"]["address"], int(usdc_order["payment"]["amount"]))
    await payer.mine(3)
    await eth_follower.sync()
    await engine()
    assert (await get_order(api, customer, eth_order["id"]))["status"] == "confirmed"
    treasury_eth = await payer.w3.eth.get_balance(chain.treasury)
    treasury_usdc = await payer.usdc.functions.balanceOf(chain.treasury).call()
    # every paid, unswept forwarder on the chain (other tests' too) is swept; what those paid into the
    # platform's wallet hold must arrive at its treasury (shops' own wallets get theirs: test_wallets)
    due = [r["wallet_address"] for r in await db.fetch(
        """SELECT wallet_address FROM crypto_payments WHERE chain = 'eth' AND sweep_id IS NULL AND wallet_id IS NULL
           AND amount_received > 0 AND (status IN ('confirmed', 'overpaid') OR resolution = 'accepted')""")]
    assert {eth_order["payment"]["address"], usdc_order["payment"]["address"]} <= set(due)
    held_eth = sum([await payer.w3.eth.get_balance(a) for a in due])
    held_usdc = sum([await payer.usdc.functions.balanceOf(a).call() for a in due])
    assert held_eth >= int(eth_order["payment"]["amount"]) and held_usdc >= int(usdc_order["payment"]["amount"])

    dry = await asyncio.to_thread(sweep_cli, chain_settings, "--dry-run")
    assert dry["dry_run"] and dry["by_treasury"][chain.treasury] >= len(due)  # nothing moved by a dry run
    assert await run_sweep(chain_settings, "eth", batch=50, dry_run=False) == 0
    assert await payer.w3.eth.get_balance(chain.treasury) == treasury_eth + held_eth
    assert await payer.usdc.functions.balanceOf(chain.treasury).call() == treasury_usdc + held_usdc
    for order in (eth_order, usdc_order):
        assert await payer.w3.eth.get_code(order["payment"]["address"]) != b""
        assert await payer.w3.eth.get_balance(order["payment"]["address"]) == 0
    sweep = await db.fetchrow("SELECT * FROM evm_sweeps WHERE $1 = ANY(order_ids)", uuid.UUID(eth_order["id"]))
    assert sweep["status"] == "confirmed" and sweep["tx_hash"].startswith("0x")
    assert uuid.UUID(usdc_order["id"]) in sweep["order_ids"] and uuid.UUID(unpaid["id"]) not in sweep["order_ids"]
    # a second run finds nothing new to sweep
    before = await db.fetchval("SELECT count(*) FROM evm_sweeps")
    again = await asyncio.to_thread(sweep_cli, chain_settings)
    assert again["swept"] == 0 and again["failed"] == 0 and again["sweeps"] == []
    assert await db.fetchval("SELECT count(*) FROM evm_sweeps") == before
