"""What wallets hold on chain against what the ledger says they should, per chain and asset.

A shop's own Bitcoin wallet holds the confirmed outputs at its addresses that no mined input spends
(the indexer follows both); the platform's, those outputs that the node also says are unspent; an EVM
treasury's balance is read from the node, with what its paid forwarders still hold before a sweep.
Money the platform holds is one wallet for every custodial shop, so it is set against the sum of their
custodial balances. A difference is for a person to explain:
a merchant spending from its own wallet, an exception not yet resolved, a sweep not yet run.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import msgspec
from web3 import AsyncHTTPProvider, AsyncWeb3

from beanpay import queries
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.chains.evm.artifacts import artifact
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import ledger

SQL = queries.load("beanpay.engine", "reconciliation.sql")


class Holding(msgspec.Struct):
    chain: str
    asset: str
    wallet: str  # "own" or "platform"
    on_chain: str  # base units
    ledger: str
    difference: str  # on chain minus ledger


async def _evm_held(settings: Settings, chain: str, owners: list[str], forwarders: list[tuple[str, str]]) \
        -> dict[str, int]:
    config = settings.evm_chain(chain)
    w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(config.rpc_url))
    held: dict[str, int] = defaultdict(int)
    try:
        tokens = {t.symbol: w3.eth.contract(address=AsyncWeb3.to_checksum_address(t.address),
                                            abi=artifact("TestUSDC")["abi"]) for t in config.tokens}
        for owner in owners:
            held["ETH"] += int(await w3.eth.get_balance(AsyncWeb3.to_checksum_address(owner)))
            for symbol, token in tokens.items():
                held[symbol] += int(await token.functions.balanceOf(AsyncWeb3.to_checksum_address(owner)).call())
        for address, asset in forwarders:
            if asset in tokens:
                held[asset] += int(await tokens[asset].functions.balanceOf(address).call())
            else:
                held["ETH"] += int(await w3.eth.get_balance(AsyncWeb3.to_checksum_address(address)))
    finally:
        await w3.provider.disconnect()
    return held


async def shop_holdings(conn: Connection, settings: Settings, shop_id: uuid.UUID) -> list[Holding]:
    """Per chain and asset: the shop's own wallet against its own-wallet balance, and the platform's
    wallet against every custodial shop's balance there (where the shop has custodial money)."""
    own_ledger = {(b.chain, b.asset): b.balance for b in await ledger.balances(conn, shop_id) if not b.custodial}
    custodial_shop = {(b.chain, b.asset) for b in await ledger.balances(conn, shop_id) if b.custodial}
    custodial_all = {(r["chain"], r["asset"]): int(r["balance"]) for r in await conn.fetch(SQL.custodial_balances)}
    wallets = await conn.fetch(SQL.shop_wallets, shop_id)
    rows: list[Holding] = []

    def add(chain: str, asset: str, wallet: str, on_chain: int, expected: int) -> None:
        rows.append(Holding(chain, asset, wallet, str(on_chain), str(expected), str(on_chain - expected)))

    btc_own = [w["id"] for w in wallets if w["chain"] == "btc"]
    if btc_own or ("btc", "BTC") in own_ledger:
        add("btc", "BTC", "own", int(await conn.fetchval(SQL.btc_unspent, btc_own)), own_ledger.get(("btc", "BTC"), 0))
    if ("btc", "BTC") in custodial_shop:
        outputs = await conn.fetch(SQL.platform_btc_outputs)
        rpc = BitcoinRpc(settings.btc_rpc, settings.btcd_rpc_user, settings.btcd_rpc_password or "")
        try:
            live = await rpc.batch([("gettxout", (r["txid"], r["output_index"], False)) for r in outputs]) \
                if outputs else []
        finally:
            await rpc.close()
        held = sum(int(r["amount"]) for r, out in zip(outputs, live, strict=True) if out is not None)
        add("btc", "BTC", "platform", held, custodial_all.get(("btc", "BTC"), 0))
    for chain in settings.evm_chains or []:
        assets = ["ETH", *(t.symbol for t in chain.tokens)]
        mine = [w for w in wallets if w["chain"] == chain.name]
        if mine or any((chain.name, a) in own_ledger for a in assets):
            forwarders = [(r["wallet_address"], r["crypto_currency"]) for r in
                          await conn.fetch(SQL.unswept_forwarders, chain.name, [w["id"] for w in mine])]
            held_own = await _evm_held(settings, chain.name, sorted({w["treasury"] for w in mine}), forwarders)
            for asset in assets:
                add(chain.name, asset, "own", held_own.get(asset, 0), own_ledger.get((chain.name, asset), 0))
        if any((chain.name, a) in custodial_shop for a in assets) and chain.treasury:
            forwarders = [(r["wallet_address"], r["crypto_currency"]) for r in
                          await conn.fetch(SQL.unswept_forwarders, chain.name, None)]
            held_platform = await _evm_held(settings, chain.name, [chain.treasury], forwarders)
            for asset in assets:
                add(chain.name, asset, "platform", held_platform.get(asset, 0),
                    custodial_all.get((chain.name, asset), 0))
    return rows
