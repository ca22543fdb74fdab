"""EVM sweeps: deploy and flush the CREATE2 forwarders of paid orders, many per transaction.

The sweeper key only pays gas: ForwarderFactory.deployAndFlush sends every forwarder's ETH and
tokens to the treasury the address was derived with, so the key can move funds nowhere else.
Payments are marked with their sweep before the transaction is sent; a failed transaction frees
them for the next run, and flushing an already flushed forwarder is harmless.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from eth_account import Account
from tqdm import tqdm
from web3 import AsyncHTTPProvider, AsyncWeb3

from beanpay import db, queries
from beanpay.chains.evm.artifacts import artifact
from beanpay.chains.evm.create2 import order_salt_input
from beanpay.config import EvmChainConfig, Settings, UnknownChain
from beanpay.db import Pool

log = structlog.get_logger("sweeps")

SQL = queries.load("beanpay.engine", "sweeps.sql")


async def _claim_batch(pool: Pool, chain: EvmChainConfig, size: int) -> tuple[uuid.UUID, list[uuid.UUID], str] | None:
    """Paid forwarders into one treasury (a shop's own, or the platform's), marked with a new sweep."""
    async with pool.transaction() as conn:
        rows = await conn.fetch(SQL.paid_unswept, chain.name, size)
        if not rows:
            return None
        sweep_id = uuid.uuid4()
        orders = [r["order_id"] for r in rows]
        await conn.execute(SQL.start_sweep, sweep_id, chain.name, orders, [r["id"] for r in rows])
        treasury = rows[0]["treasury"] or chain.treasury
        assert treasury is not None
        return sweep_id, orders, treasury


async def _finish(pool: Pool, sweep_id: uuid.UUID, tx_hash: str | None, error: str | None) -> None:
    async with pool.transaction() as conn:
        await conn.execute(SQL.finish_sweep, sweep_id, "failed" if error else "confirmed", tx_hash, error)


async def _send(w3: AsyncWeb3[Any], chain: EvmChainConfig, account: Any, orders: list[uuid.UUID],
                treasury: str) -> tuple[str, bool]:
    assert chain.factory
    factory = w3.eth.contract(address=AsyncWeb3.to_checksum_address(chain.factory),
                              abi=artifact("ForwarderFactory")["abi"])
    call = factory.functions.deployAndFlush([order_salt_input(o) for o in orders],
                                            AsyncWeb3.to_checksum_address(treasury),
                                            [AsyncWeb3.to_checksum_address(t.address) for t in chain.tokens])
    tx = await call.build_transaction({
        "from": account.address, "chainId": chain.chain_id,
        "nonce": await w3.eth.get_transaction_count(account.address, "pending")})
    signed = account.sign_transaction(tx)
    tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    return "0x" + bytes(tx_hash).hex().removeprefix("0x"), receipt["status"] == 1


class Swept(msgspec.Struct):
    sweep_id: uuid.UUID
    treasury: str
    forwarders: int
    tx_hash: str | None
    error: str | None


async def run_sweep(settings: Settings, chain_name: str, *, batch: int, dry_run: bool, as_json: bool = False) -> int:
    """Sweep every paid forwarder on the chain, in batches; prints a summary (`as_json`: one JSON object)."""
    try:
        chain = settings.evm_chain(chain_name)
    except UnknownChain as exc:
        print(f"error: {exc}")
        return 2
    if not (chain.factory and chain.treasury):
        print(f"error: {chain_name!r} is not an EVM chain with a forwarder factory and treasury configured")
        return 2
    if not settings.sweeper_key:
        print("error: BEANPAY_SWEEPER_KEY is not set")
        return 2
    pool = await db.create_pool(settings)
    w3 = AsyncWeb3(AsyncHTTPProvider(chain.rpc_url))
    account = Account.from_key(settings.sweeper_key)
    swept, failed = 0, 0
    done: list[Swept] = []
    try:
        by_treasury = {r["treasury"]: int(r["forwarders"])
                       for r in await pool.fetch(SQL.unswept_by_treasury, chain_name, chain.treasury)}
        waiting = sum(by_treasury.values())
        if dry_run:
            if as_json:
                print(msgspec.json.encode({"chain": chain_name, "dry_run": True, "waiting": waiting,
                                           "by_treasury": by_treasury}).decode())
            else:
                print(f"{waiting} paid forwarder(s) on {chain_name} would be swept: "
                      + (", ".join(f"{n} to {t}" for t, n in by_treasury.items()) or "none"))
            return 0
        with tqdm(total=waiting, desc=f"sweeping {chain_name}", unit="forwarder", disable=as_json) as bar:
            while (claimed := await _claim_batch(pool, chain, batch)) is not None:
                sweep_id, orders, treasury = claimed
                try:
                    tx_hash, ok = await _send(w3, chain, account, orders, treasury)
                    error = None if ok else "transaction reverted"
                except Exception as exc:  # recorded on the sweep, payments freed for a rerun
                    tx_hash, error = None, repr(exc)[:500]
                await _finish(pool, sweep_id, tx_hash, error)
                done.append(Swept(sweep_id, treasury, len(orders), tx_hash, error))
                if error:
                    failed += len(orders)
                    log.error("sweep failed", sweep=str(sweep_id), error=error)
                    break
                swept += len(orders)
                bar.update(len(orders))
    finally:
        await pool.close()
        await w3.provider.disconnect()
    if as_json:
        print(msgspec.json.encode({"chain": chain_name, "dry_run": False, "swept": swept, "failed": failed,
                                   "sweeps": done}).decode())
    else:
        print(f"swept {swept} forwarder(s) on {chain_name}; {failed} failed")
    return 1 if failed else 0
