"""A shop's own receiving wallets over HTTP: see them, set one per chain, go back to the platform's."""

from __future__ import annotations

import uuid

from aiohttp import web

from beanpay.api.body import decode_body
from beanpay.api.custody.schemas import ShopWallets, WalletOut, WalletSet
from beanpay.api.guard import allow, needs
from beanpay.api.http import actor, json, path_uuid
from beanpay.api.routing import Routes
from beanpay.api.shops import fetch_shop
from beanpay.api.state import pool, settings
from beanpay.config import Settings
from beanpay.db import Connection
from beanpay.engine import wallets
from beanpay.errors import InvalidInput, NotFound

routes = Routes()
READ = needs("ledger:read", "the shop's owners and managers, its integrations, operators")
MANAGE = needs("wallets:manage", "the shop's owners, operators")


def _chains(s: Settings) -> list[str]:
    return [wallets.BITCOIN, *(c.name for c in s.evm_chains or [])]


def _chain(request: web.Request) -> str:
    chain = request.match_info["chain"]
    if chain not in _chains(settings(request)):
        raise NotFound(f"no chain {chain!r} here; configured: {', '.join(_chains(settings(request)))}")
    return chain


async def _out(conn: Connection, s: Settings, chain: str, wallet: wallets.WalletRow | None) -> WalletOut:
    if wallet is None:
        return WalletOut(chain=chain, custodial=True)
    first = None
    if wallet.account_key is not None:
        key = wallets.account(wallet.account_key, s.btc_network)
        first = [key.derive(i).address for i in range(wallets.FIRST_ADDRESSES)]
    return WalletOut(chain=chain, custodial=False, wallet_id=wallet.id, account_key=wallet.account_key,
                     key_origin=wallet.key_origin, treasury=wallet.treasury, first_addresses=first,
                     gap_limit=wallet.gap_limit, gap=await wallets.gap(conn, wallet) if first else None,
                     next_index=wallet.next_index if first else None, created_at=wallet.created_at)


async def _all(conn: Connection, s: Settings, shop_id: uuid.UUID) -> ShopWallets:
    own = {w.chain: w for w in await wallets.active(conn, shop_id)}
    out = [await _out(conn, s, chain, own.get(chain)) for chain in _chains(s)]
    return ShopWallets(shop_id, any(w.custodial for w in out), out)


@routes.add("GET", "/v1/shops/{shop_id}/wallets", summary="The shop's receiving wallet on each chain",
            tag="wallets", response=ShopWallets, policy=READ, errors=(401, 403, 404))
async def get_wallets(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    async with pool(request).acquire() as conn:
        await fetch_shop(conn, shop_id)
        return json(await _all(conn, settings(request), shop_id))


@routes.add("PUT", "/v1/shops/{shop_id}/wallets/{chain}",
            summary="Set the shop's own wallet on a chain (new orders only; addresses handed out stay watched)",
            tag="wallets", body=WalletSet, response=WalletOut, policy=MANAGE, errors=(400, 401, 403, 404, 422))
async def put_wallet(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    chain = _chain(request)
    body = await decode_body(request, WalletSet)
    s = settings(request)
    account_key = key_origin = treasury = None
    if chain == wallets.BITCOIN:
        if body.account_key is None or body.treasury is not None:
            raise InvalidInput("a Bitcoin wallet is an account key", [
                {"field": "account_key", "message": "required: the BIP84 account xpub/zpub"}
                if body.account_key is None else {"field": "treasury", "message": "not for Bitcoin"}])
        wallets.check_bitcoin(body.account_key, body.key_origin, s.btc_network)
        account_key, key_origin = body.account_key.strip(), body.key_origin
    else:
        if body.treasury is None or body.account_key is not None or body.key_origin is not None:
            raise InvalidInput("an EVM wallet is a treasury address", [
                {"field": "treasury", "message": "required: the checksummed treasury address"}
                if body.treasury is None else {"field": "account_key", "message": "not for EVM chains"}])
        treasury = wallets.check_treasury(body.treasury)
    async with pool(request).transaction() as conn:
        await fetch_shop(conn, shop_id, lock=True)
        wallet = await wallets.set_wallet(conn, shop_id, chain, account_key=account_key, key_origin=key_origin,
                                          treasury=treasury, gap_limit=body.gap_limit, actor=actor(request))
        return json(await _out(conn, s, chain, wallet))


@routes.add("DELETE", "/v1/shops/{shop_id}/wallets/{chain}",
            summary="Go back to the platform's wallet on a chain for new orders (custodial)", tag="wallets",
            status=204, policy=MANAGE, errors=(401, 403, 404))
async def delete_wallet(request: web.Request) -> web.Response:
    shop_id = path_uuid(request, "shop_id")
    allow(request, shop_id)
    chain = _chain(request)
    async with pool(request).transaction() as conn:
        await fetch_shop(conn, shop_id, lock=True)
        await wallets.retire(conn, shop_id, chain, actor(request))  # already on the platform's: nothing to do
    return web.Response(status=204)
