"""Where each part of the highly available stack listens: fixed offsets from BEANPAY_HA_PORTS_BASE."""

from __future__ import annotations

from dataclasses import dataclass

from beanpay.config import Settings

MEMBERS = 3  # etcd, Kafka and Sentinel: a majority survives one loss
PG_NODES = 2  # a primary and its synchronous standby
COPIES = 2  # processes of each beanpay service


@dataclass(frozen=True)
class HaPorts:
    base: int

    def etcd_client(self, i: int) -> int:
        return self.base + i

    def etcd_peer(self, i: int) -> int:
        return self.base + 10 + i

    def pg(self, i: int) -> int:
        return self.base + 20 + i

    def patroni(self, i: int) -> int:
        return self.base + 30 + i

    @property
    def pg_primary(self) -> int:  # HAProxy: the node Patroni says leads
        return self.base + 40

    @property
    def pg_replicas(self) -> int:  # HAProxy: streaming standbys, for reads that may lag
        return self.base + 41

    @property
    def api(self) -> int:  # HAProxy: the API processes
        return self.base + 42

    @property
    def haproxy_stats(self) -> int:
        return self.base + 43

    def kafka(self, i: int) -> int:
        return self.base + 50 + i

    def kafka_controller(self, i: int) -> int:
        return self.base + 60 + i

    def redis(self, i: int) -> int:  # 0 starts as primary, 1 as its replica
        return self.base + 70 + i

    def sentinel(self, i: int) -> int:
        return self.base + 80 + i

    def api_process(self, i: int) -> int:
        return self.base + 90 + i

    def ops(self, i: int) -> int:  # each beanpay process's /readyz and /metrics
        return self.base + 100 + i

    @property
    def kafka_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka(i)}" for i in range(MEMBERS))

    @property
    def redis_url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{self.sentinel(i)}" for i in range(MEMBERS)) + "/beanpay/0"


def ports(settings: Settings) -> HaPorts:
    return HaPorts(settings.ha_ports_base)
