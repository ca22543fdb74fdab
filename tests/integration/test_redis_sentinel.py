"""Redis behind Sentinel: a primary, a replica and three Sentinels (redis-server --sentinel) on loopback.
beanpay's clients, given a redis+sentinel:// URL, follow a failover: the primary is killed with -9, the
Sentinels promote the replica, and beanpay's cache and rate limiter write to the new primary, with no
restart. The window in which Redis could not be written is measured."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from beanpay import redis_client
from beanpay.api.cache import Cache
from beanpay.api.ratelimit import Limiter
from beanpay.deploy.endpoint import free_port

MASTER = "beanpay"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"




class Group:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.primary, self.replica = free_port(), free_port()
        self.sentinels = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinels) + f"/{MASTER}/0"

    def start(self) -> None:
        # --dir: a replica's full sync writes an RDB file, which must not land in the working directory
        common = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--protected-mode", "no",
                  "--dir", tempfile.gettempdir()]
        self.procs["primary"] = subprocess.Popen([REDIS, "--port", str(self.primary), *common],
                                                 stdout=subprocess.DEVNULL)
        self.procs["replica"] = subprocess.Popen([REDIS, "--port", str(self.replica), *common, "--replicaof",
                                                  "127.0.0.1", str(self.primary)], stdout=subprocess.DEVNULL)
        for i, port in enumerate(self.sentinels):
            conf = self.folder / f"sentinel-{i}.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\nprotected-mode no\n"
                            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary} 2\n"
                            f"sentinel down-after-milliseconds {MASTER} 1000\n"
                            f"sentinel failover-timeout {MASTER} 10000\n")
            self.procs[f"sentinel-{i}"] = subprocess.Popen([REDIS, str(conf), "--sentinel"], stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        for p in self.procs.values():
            p.kill()
        for p in self.procs.values():
            p.wait(timeout=10)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    found = Group(tmp_path)
    found.start()
    yield found
    found.stop()


async def role_of(port: int) -> str:
    r = redis_client.connect(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1, socket_timeout=1)
    try:
        return str((await r.info("replication"))["role"])
    finally:
        await r.aclose()


@pytest.fixture
async def ready(group: Group) -> AsyncIterator[Group]:
    """Until every Sentinel knows the replica and the other Sentinels (a failover needs them)."""
    deadline = time.monotonic() + 30
    for port in group.sentinels:
        s = redis_client.connect(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                try:
                    fields = await s.sentinel_master(MASTER)  # parsed by redis-py
                    if int(fields["num-slaves"]) == 1 and int(fields["num-other-sentinels"]) == 2:
                        break
                except (OSError, RedisError, KeyError):  # not up yet
                    pass
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"sentinel {port} never saw the group")
        finally:
            await s.aclose()
    yield group


async def test_beanpay_follows_a_sentinel_failover(ready: Group) -> None:
    cache = Cache(ready.url, timeout=0.5, retry_after=0.2)
    limiter = Limiter(ready.url, timeout=0.5, retry_after=0.2, namespace="sentinel-test")
    client = redis_client.connect(ready.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    await cache.start()
    try:
        body = await cache.get_or_load("shop:sentinel", 60, lambda: _value(b"one"))
        assert body == b"one"
        assert await client.get("shop:sentinel") == b"one"  # written to the primary, through Sentinel
        assert await role_of(ready.primary) == "master"

        ready.procs["primary"].kill()  # -9: no goodbye to the Sentinels
        killed = time.monotonic()
        window = None
        while time.monotonic() - killed < 30:
            try:
                await client.set("probe", "x")
                window = time.monotonic() - killed
                break
            except Exception:  # the old primary is gone, the new one not yet promoted
                await asyncio.sleep(0.1)
        assert window is not None, "no primary within 30 s"
        assert await role_of(ready.replica) == "master"  # the Sentinels promoted the replica
        print(f"writes were refused for {window:.1f} s after the primary was killed")
        assert window < 15

        # the cache bypasses Redis for a moment after each error it sees (its pooled connections to the
        # old primary fail once each), then writes to the new primary. A load that races an invalidation
        # (its own, echoed by the feed) is not stored, by design: so invalidate once, then read until stored.
        await asyncio.wait_for(cache._subscribed.wait(), 15)  # the invalidation feed is back on the new primary
        await cache.invalidate("shop:sentinel")
        promoted = redis_client.connect(f"redis://127.0.0.1:{ready.replica}/0", socket_timeout=1)
        try:
            stored = None
            for _ in range(50):
                assert await cache.get_or_load("shop:sentinel", 60, lambda: _value(b"two")) == b"two"
                if (stored := await promoted.get("shop:sentinel")) == b"two":
                    break
                await asyncio.sleep(0.3)
            assert stored == b"two", "the cache never wrote to the promoted primary"
        finally:
            await promoted.aclose()
        # the limiter counts on the new primary too (None would be Redis not answering)
        decision = await limiter.reserve("bucket", 5)
        assert decision is not None and decision.allowed and decision.remaining == 4
        await limiter.refund("bucket")  # given back: the next reservation finds the same room
        again = await limiter.reserve("bucket", 5)
        assert again is not None and again.allowed and again.remaining == 4
    finally:
        await client.aclose()
        await limiter.close()
        await cache.close()


def test_sentinel_urls_are_checked() -> None:
    for bad in ("redis+sentinel://127.0.0.1:1", "redis+sentinel://127.0.0.1/beanpay", "redis+sentinel://:1/m"):
        with pytest.raises(redis_client.BadRedisUrl):
            redis_client.connect(bad)


async def _value(data: bytes) -> bytes:
    return data
