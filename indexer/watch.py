"""Handing out watched deposit addresses (the engine calls this when it creates an order)."""

from __future__ import annotations

from beanpay.chains.bitcoin.addresses import Bip84Account, DepositAddress
from beanpay.db import Connection
from beanpay.indexer import store


async def new_btc_address(conn: Connection, account: Bip84Account, order_id: object = None) -> DepositAddress:
    """Allocate the next BIP84 index and watch its address, in the caller's transaction."""
    index = await store.allocate_index(conn, "btc")
    address = account.derive(index)
    await store.watch(conn, "btc", address.address, address.script, index, order_id)
    return address
