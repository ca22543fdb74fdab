"""Where each part of the highly available stack listens: fixed offsets from a region's base port
(BEANPAY_HA_PORTS_BASE for the active region A, BEANPAY_HA_STANDBY_PORTS_BASE for the standby region B)."""

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

    def kafka_remote(self, i: int) -> int:  # each broker's listener for the other region (through the link)
        return self.base + 120 + i

    # the link between the regions (toxiproxy) runs beside the standby region, on its ports
    @property
    def link_api(self) -> int:
        return self.base + 130

    @property
    def link_pg(self) -> int:  # -> the active region's primary (its HAProxy)
        return self.base + 131

    def link_kafka(self, i: int) -> int:  # -> the active region's brokers' remote listeners
        return self.base + 132 + i

    @property
    def front(self) -> int:  # the global entry point clients use: region A's API, else region B's
        return self.base + 140

    @property
    def front_stats(self) -> int:
        return self.base + 141

    @property
    def kafka_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka(i)}" for i in range(MEMBERS))

    @property
    def redis_url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{self.sentinel(i)}" for i in range(MEMBERS)) + "/beanpay/0"


@dataclass(frozen=True)
class Region:
    """One region of the stack: where its state lives, its ports, and, for a standby region, the active
    region it replicates from."""

    name: str  # "a" (active), "b" (standby)
    folder: str  # under the state folder
    at: HaPorts
    upstream: HaPorts | None = None

    def pg_name(self, i: int) -> str:
        # PostgreSQL's application_name on replication: it must differ across regions (synchronous_standby_names)
        return f"pg-{i + 1}" if self.upstream is None else f"pg-{self.name}{i + 1}"


def ports(settings: Settings) -> HaPorts:
    return HaPorts(settings.ha_ports_base)


def region_a(settings: Settings) -> Region:
    return Region("a", "ha", ports(settings))


def region_b(settings: Settings) -> Region:
    return Region("b", "ha-b", HaPorts(settings.ha_standby_ports_base), upstream=ports(settings))
