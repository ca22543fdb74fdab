"""Typed application keys for the resources opened at start-up."""

from __future__ import annotations

from aiohttp import web

from api.cache import Cache
from beanpay.config import Settings
from beanpay.db import Pool

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", Pool)
CACHE = web.AppKey("cache", Cache)


def pool(request: web.Request) -> Pool:
    return request.app[POOL]


def cache(request: web.Request) -> Cache:
    return request.app[CACHE]
