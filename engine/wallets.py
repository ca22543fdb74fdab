"""Merchants' own wallets: where a shop's money goes on each chain, and handing out its addresses.

A shop sets, per chain, a Bitcoin BIP84 account public key or an EVM treasury address; without one,
the platform's wallet from the configuration is used and the shop's money on that chain is held by
the platform (custodial). The server never holds a merchant's private key: Bitcoin addresses derive
from the public key, and an EVM forwarder's CREATE2 salt binds the treasury it can flush to.

Bitcoin receive addresses are handed out so that the run of never-used ones stays below the wallet's
gap limit (merchants' wallet software stops scanning after that many): an address of an order that
expired with nothing ever paid to it goes back to the pool after a quarantine, and when none is free
and the gap is full, a new Bitcoin order is refused rather than handed an address the merchant's
wallet would not see.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from functools import lru_cache

import msgspec
from prometheus_client import Gauge

from beanpay import audit, queries
from beanpay.chains.bitcoin.addresses import Bip84Account, DepositAddress, InvalidAccountKey, Network
from beanpay.chains.evm.addresses import InvalidAddress, checksummed
from beanpay.db import Connection, fetch_as, fetchrow_as
from beanpay.errors import InvalidInput, Unavailable
from beanpay.events import catalog
from beanpay.events.outbox import Event, emit_many
from beanpay.events.payloads import WalletChanged

SQL = queries.load("beanpay.engine", "wallets.sql")
BITCOIN = "btc"
FIRST_ADDRESSES = 5  # shown when a Bitcoin wallet is set, to compare with the merchant's own wallet
GAP = Gauge("beanpay_wallet_gap", "Receive addresses handed out after the wallet's last used one",
            ["shop", "chain"])


class WalletRow(msgspec.Struct):
    id: uuid.UUID
    shop_id: uuid.UUID
    chain: str
    account_key: str | None
    key_origin: str | None
    treasury: str | None
    gap_limit: int
    next_index: int
    next_change: int
    created_at: dt.datetime
    retired_at: dt.datetime | None


@lru_cache(maxsize=4096)
def account(account_key: str, network: Network) -> Bip84Account:
    """The parsed account key (parsing and the first derivation step cost ~1 ms; orders reuse it)."""
    return Bip84Account(account_key, network)


_ORIGIN = re.compile(r"^\[([0-9a-fA-F]{8})((?:/\d+['hH])+)\]$")


def parse_origin(origin: str, network: Network) -> tuple[bytes, list[int]]:
    """`[fingerprint/84h/coin'h/account'h]`: the master key's fingerprint and the account's hardened
    path, as BIP174 signers need them. Raises ValueError saying what is wrong."""
    m = _ORIGIN.match(origin.strip())
    if m is None:
        raise ValueError("expected [fingerprint/84h/<coin>h/<account>h], e.g. [d34db33f/84h/0h/0h]")
    steps = [int(s[:-1]) for s in m.group(2).strip("/").split("/")]
    if len(steps) != 3 or steps[0] != 84:
        raise ValueError("a BIP84 account path has three hardened steps starting with 84h")
    if steps[1] != (0 if network == "mainnet" else 1):
        raise ValueError(f"coin type {steps[1]}h is not {network}'s")
    return bytes.fromhex(m.group(1)), [s + 2**31 for s in steps]


def check_bitcoin(account_key: str, key_origin: str | None, network: Network) -> list[str]:
    """The first receive addresses of a valid account key; field errors otherwise. Pure."""
    problems = []
    try:
        first = [account(account_key.strip(), network).derive(i).address for i in range(FIRST_ADDRESSES)]
    except InvalidAccountKey as exc:
        problems.append({"field": "account_key", "message": str(exc)})
    if key_origin is not None:
        try:
            parse_origin(key_origin, network)
        except ValueError as exc:
            problems.append({"field": "key_origin", "message": str(exc)})
    if problems:
        raise InvalidInput("the wallet is not valid", problems)
    return first


def check_treasury(treasury: str) -> str:
    try:
        return checksummed(treasury)
    except InvalidAddress as exc:
        raise InvalidInput("the wallet is not valid", [{"field": "treasury", "message": str(exc)}]) from None


async def active(conn: Connection, shop_id: uuid.UUID) -> list[WalletRow]:
    return await fetch_as(conn, SQL.active, WalletRow, shop_id)


async def by_id(conn: Connection, wallet_id: uuid.UUID) -> WalletRow | None:
    return await fetchrow_as(conn, SQL.by_id, WalletRow, wallet_id)


async def gap(conn: Connection, wallet: WalletRow) -> int:
    value = int(await conn.fetchval(SQL.gap, wallet.id) or 0)
    GAP.labels(str(wallet.shop_id), wallet.chain).set(value)
    return value


async def set_wallet(conn: Connection, shop_id: uuid.UUID, chain: str, *, account_key: str | None,
                     key_origin: str | None, treasury: str | None, gap_limit: int,
                     actor: audit.Actor) -> WalletRow:
    """Set the shop's wallet on a chain (validated by the caller). The same key or treasury keeps its
    row (only the gap limit may change); another retires it, so new orders go to the new one and
    addresses already handed out stay watched and credited to the wallet they came from."""
    current = await fetchrow_as(conn, SQL.lock_active, WalletRow, shop_id, chain)
    if current is not None and (current.account_key, current.key_origin, current.treasury) == (
            account_key, key_origin, treasury):
        after = await fetchrow_as(conn, SQL.set_gap_limit, WalletRow, current.id, gap_limit)
        assert after is not None
        await audit.record(conn, actor, "wallet.update", "wallet", current.id, before=current, after=after)
        return after
    if current is not None:
        await conn.execute(SQL.retire, current.id)
    after = await fetchrow_as(conn, SQL.add, WalletRow, shop_id, chain, account_key, key_origin, treasury,
                              gap_limit, audit.user_id(actor))
    assert after is not None
    await audit.record(conn, actor, "wallet.set", "wallet", after.id, before=current, after=after)
    await emit_many(conn, [Event(catalog.WALLET_CHANGED, shop_id, WalletChanged(shop_id, chain, after.id, False))])
    return after


async def retire(conn: Connection, shop_id: uuid.UUID, chain: str, actor: audit.Actor) -> WalletRow | None:
    """The shop goes back to the platform's wallet on `chain` for new orders (custodial)."""
    current = await fetchrow_as(conn, SQL.lock_active, WalletRow, shop_id, chain)
    if current is None:
        return None
    await conn.execute(SQL.retire, current.id)
    await audit.record(conn, actor, "wallet.retire", "wallet", current.id, before=current)
    await emit_many(conn, [Event(catalog.WALLET_CHANGED, shop_id, WalletChanged(shop_id, chain, None, True))])
    return current



async def receive_address(conn: Connection, wallet_id: uuid.UUID, network: Network,
                          quarantine: dt.timedelta) -> tuple[DepositAddress, uuid.UUID | None]:
    """A receive address of the shop's Bitcoin wallet for a new order, in the caller's transaction:
    the lowest recyclable one, else the next index if the gap allows. Returns it with the payment
    that gave it up, if recycled. Raises Unavailable when the gap is full and none is free."""
    wallet = await fetchrow_as(conn, SQL.by_id, WalletRow, wallet_id)
    assert wallet is not None and wallet.account_key is not None
    await conn.fetchrow(SQL.lock_active, wallet.shop_id, BITCOIN)  # one order at a time takes this wallet's addresses
    key = account(wallet.account_key, network)
    free = await conn.fetchrow(SQL.recyclable, wallet.id, quarantine)
    if free is not None:
        await conn.execute(SQL.release_address, free["payment_id"])
        return key.derive(int(free["derivation_index"])), free["payment_id"]
    used_gap = await gap(conn, wallet)
    if used_gap >= wallet.gap_limit:
        raise Unavailable(f"the shop's Bitcoin wallet has {used_gap} unused addresses outstanding (its gap limit is "
                          f"{wallet.gap_limit}); try again shortly or pay with another asset",
                          reason="wallet_gap_limit")
    return key.derive(int(await conn.fetchval(SQL.next_receive, wallet.id))), None
