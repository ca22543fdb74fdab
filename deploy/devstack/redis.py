"""Redis 7 from the Debian package; a cache only, so no persistence."""

from __future__ import annotations

import shutil

import redis

from beanpay.deploy.devstack.process import StackError, run, wait_until
from beanpay.deploy.devstack.service import NamedProcess, Status


class Redis(NamedProcess):
    name = "redis"
    marker = "redis-server"

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            raise StackError("redis-server not found: apt-get install -y redis-server")

    def start(self) -> None:
        self.paths.make()
        run(["redis-server", "--port", str(self.settings.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "yes",
             "--pidfile", str(self.paths.pidfile), "--logfile", str(self.paths.log),
             "--dir", str(self.paths.data)])
        wait_until(self.healthy, timeout=15, what="redis", log=self.paths.log)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.redis_port,)

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.settings.redis_port, socket_timeout=1)

    def healthy(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def status(self) -> Status:
        pid = self.pid()
        healthy = pid is not None and self.healthy()
        version = str(self._client().info("server")["redis_version"]) if healthy else "?"
        return Status(self.name, f"127.0.0.1:{self.settings.redis_port}", pid, version, healthy)
