"""Redis clients from one URL, so every process finds the same server the same way.

`redis://host:port/db` is one server. `redis+sentinel://[:password@]host:port,host:port,.../master/db`
names Redis Sentinels (Debian's `redis-sentinel`, or `redis-server --sentinel`) and the monitored
master: the client asks them for the primary and asks again when its connection fails, so a Sentinel
failover moves beanpay to the promoted replica without a restart (redis-py's SentinelConnectionPool).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

SENTINEL = "redis+sentinel"


class BadRedisUrl(ValueError):
    pass


def _sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    parts = urlsplit(url)
    hosts = []
    for host in parts.netloc.rpartition("@")[2].split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise BadRedisUrl(f"{url!r}: each Sentinel is host:port")
        hosts.append((name, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise BadRedisUrl(f"{url!r}: name the master, as redis+sentinel://host:port,.../master[/db]")
    db = int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
    password = unquote(parts.password) if parts.password else None
    return hosts, path[0], db, password


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL + "://")


def connect(url: str, **kw: Any) -> aioredis.Redis:
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **kw)
    hosts, master, db, password = _sentinel_parts(url)
    timeout = kw.get("socket_connect_timeout")
    sentinels = Sentinel(hosts, sentinel_kwargs={"socket_timeout": timeout,  # type: ignore[no-untyped-call]
                                                 "socket_connect_timeout": timeout})
    found: aioredis.Redis = sentinels.master_for(master, db=db, password=password, **kw)
    return found

