"""Typed application keys for the resources opened at start-up."""

from __future__ import annotations

import asyncio

from aiohttp import web

from beanpay.api.accounts.oidc import Verifier
from beanpay.api.cache import Cache
from beanpay.api.ratelimit import Limiter, Networks
from beanpay.chains.bitcoin.addresses import Bip84Account
from beanpay.chains.bitcoin.rpc import BitcoinRpc
from beanpay.config import Settings
from beanpay.db import Pool
from beanpay.engine.prices.service import RateService

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", Pool)
CACHE = web.AppKey("cache", Cache)
RATES = web.AppKey("rates", RateService)
OIDC = web.AppKey("oidc", Verifier)
LIMITER = web.AppKey("limiter", Limiter)
TRUSTED_PROXIES: web.AppKey[Networks] = web.AppKey("trusted_proxies")
BTC_ACCOUNT: web.AppKey[Bip84Account | None] = web.AppKey("btc_account")
DRAINING = web.AppKey("draining", asyncio.Event)  # set on SIGTERM: /readyz fails while requests still flow
BTC_RPC = web.AppKey("btc_rpc", BitcoinRpc)  # fee rates, unspent checks and broadcasts of refunds


def pool(request: web.Request) -> Pool:
    return request.app[POOL]


def cache(request: web.Request) -> Cache:
    return request.app[CACHE]


def rates(request: web.Request) -> RateService:
    return request.app[RATES]


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]
