"""Redis 7 (Debian) with Sentinel: a primary, a replica, and three Sentinels that agree (quorum 2) when the
primary is gone and promote the replica. beanpay asks the Sentinels where the primary is
(BEANPAY_REDIS_URL=redis+sentinel://...), so a failover moves it without a restart."""

from __future__ import annotations

import shutil
from typing import ClassVar

import redis

from beanpay.config import Settings
from beanpay.deploy.devstack.ha.ports import MEMBERS, Region, region_a
from beanpay.deploy.devstack.process import StackError, run
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status

MASTER = "beanpay"


class _RedisProcess(PidfileProcess):
    """A redis-server of a region: a data node or a Sentinel, `index` of its kind."""

    marker = "redis-server"
    kind: ClassVar[str]

    def __init__(self, settings: Settings, index: int, region: Region | None = None) -> None:
        region = region or region_a(settings)
        self.settings, self.index, self.at = settings, index, region.at
        self.name = f"{self.kind}-{index + 1}"
        self.paths = Paths(settings, f"{region.folder}/{self.name}")
        self.port = self.at.sentinel(index) if self.kind == "sentinel" else self.at.redis(index)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port,)

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            raise StackError("redis-server not found: apt-get install -y redis-server")


class RedisNode(_RedisProcess):
    """Node 0 starts as the primary, node 1 as its replica; after a failover Sentinel rewrites who is which."""

    kind = "redis"

    def start(self) -> None:
        self.paths.make()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.paths.pidfile),
                "--logfile", str(self.paths.log), "--dir", str(self.paths.data)]
        primary = self._current_primary()
        if primary is not None and primary != self.port:
            args += ["--replicaof", "127.0.0.1", str(primary)]
        elif primary is None and self.index > 0:
            args += ["--replicaof", "127.0.0.1", str(self.at.redis(0))]
        run(args)

    def _current_primary(self) -> int | None:
        """Where the Sentinels say the primary is, when they run (a node restarted after a failover rejoins
        as a replica of the promoted one rather than as a second primary)."""
        for i in range(MEMBERS):
            try:
                addr = redis.Redis(port=self.at.sentinel(i),
                                   socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            if isinstance(addr, tuple):
                return int(addr[1])
        return None

    def role(self) -> str:
        try:
            return str(redis.Redis(port=self.port, socket_timeout=1).info("replication")["role"])
        except redis.RedisError:
            return "?"

    def healthy(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def status(self) -> Status:
        pid = self.pid()
        return Status(self.name, f"127.0.0.1:{self.port}", pid, "", pid is not None and self.healthy(), self.role())


class Sentinel(_RedisProcess):
    kind = "sentinel"

    def start(self) -> None:
        self.paths.make()
        conf = self.paths.run / "sentinel.conf"
        if not conf.exists():  # Sentinel rewrites its file with what it learns (the current primary): keep it
            conf.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.paths.data}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.at.redis(0)} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 2000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n")
        run(["redis-server", str(conf), "--sentinel", "--daemonize", "yes", "--pidfile", str(self.paths.pidfile),
             "--logfile", str(self.paths.log)])

    def primary(self) -> int | None:
        try:
            addr = redis.Redis(port=self.port, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)
        except redis.RedisError:
            return None
        return int(addr[1]) if isinstance(addr, tuple) else None

    def healthy(self) -> bool:
        return self.primary() is not None

    def status(self) -> Status:
        pid, primary = self.pid(), self.primary()
        return Status(self.name, f"127.0.0.1:{self.port}", pid, "", pid is not None and primary is not None,
                      f"primary at 127.0.0.1:{primary}" if primary else "no primary known")
