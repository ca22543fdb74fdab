"""Deposit addresses: the engine hands them out (one per order) and the indexers watch them.

Bitcoin: the next index of the merchant's BIP84 account, derived from its xpub. EVM: the order's
CREATE2 forwarder, computed off-chain. Either way, the address is watched in the caller's
transaction, so it is watched exactly when the order exists.
"""

from __future__ import annotations

import uuid

from beanpay import queries
from beanpay.chains.bitcoin.addresses import Bip84Account, DepositAddress
from beanpay.chains.evm.create2 import forwarder_address
from beanpay.config import EvmChainConfig
from beanpay.db import Connection
from beanpay.errors import Conflict

SQL = queries.load("beanpay.engine", "addresses.sql")
BITCOIN = "btc"


async def allocate_btc(conn: Connection, account: Bip84Account) -> DepositAddress:
    """The next BIP84 address (not yet watched: see `watch`); the counter stays locked until commit."""
    return account.derive(int(await conn.fetchval(SQL.allocate_index, BITCOIN)))


async def watch(conn: Connection, chain: str, address: str, script: bytes | None = None,
                index: int | None = None, order_id: uuid.UUID | None = None, *, key_chain: int = 0,
                wallet_id: uuid.UUID | None = None, purpose: str = "deposit") -> None:
    await conn.execute(SQL.watch, chain, address, script, index, order_id, key_chain, wallet_id, purpose)


async def new_btc_address(conn: Connection, account: Bip84Account, order_id: uuid.UUID | None = None) -> DepositAddress:
    """Allocate the next BIP84 index and watch its address, in the caller's transaction."""
    address = await allocate_btc(conn, account)
    await watch(conn, BITCOIN, address.address, address.script, address.index, order_id)
    return address


def evm_forwarder(chain: EvmChainConfig, order_id: uuid.UUID, treasury: str | None = None) -> str:
    """The order's CREATE2 forwarder on `chain`, flushing to `treasury` (the shop's own; default the
    platform's). Pure: nothing is asked of the node."""
    treasury = treasury or chain.treasury
    if not (chain.factory and chain.implementation and treasury):
        raise Conflict(f"chain {chain.name} has no forwarder factory, implementation or treasury configured")
    return forwarder_address(chain.factory, chain.implementation, order_id, treasury)
