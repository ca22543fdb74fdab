"""Bring the highly available stack up or down, idempotently, and report its state (`beanpay dev up --ha`).

Order matters once: etcd's members before Patroni (its store), the first PostgreSQL node before the second
(the second clones it), HAProxy before anything connects, then the beanpay role, database and migrations
through HAProxy, Kafka's three nodes together (a quorum), Redis before its Sentinels, and beanpay last.
The chains (anvil, btcd) are the plain stack's: one node each, as beanpay follows nodes it does not run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import msgspec

from beanpay.config import Settings
from beanpay.deploy.devstack import stack as plain
from beanpay.deploy.devstack.ha.etcd import EtcdMember
from beanpay.deploy.devstack.ha.haproxy import HAProxy
from beanpay.deploy.devstack.ha.patroni import PatroniNode
from beanpay.deploy.devstack.ha.ports import COPIES, MEMBERS, PG_NODES, ports
from beanpay.deploy.devstack.ha.redis_ha import RedisNode, Sentinel
from beanpay.deploy.devstack.kafka import Kafka
from beanpay.deploy.devstack.process import StackError, port_open, read_pid, spawn, stop_pid, wait_until
from beanpay.deploy.devstack.service import Paths, Service, Status
from beanpay.migrate import migrate

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
COMMANDS = {"api": ["api"], "relay": ["relay"], "engine": ["engine"], "webhooks": ["webhooks", "serve"],
            "notify": ["notify"], "index-eth": ["index", "--chain", "eth"], "index-btc": ["index", "--chain", "btc"]}


def ha_settings(settings: Settings) -> Settings:
    """The settings beanpay runs with on the HA stack: PostgreSQL through HAProxy, Redis through its
    Sentinels, every Kafka broker to bootstrap from."""
    at = ports(settings)
    password = quote(settings.pg_password or "", safe="")
    return msgspec.structs.replace(
        settings, database_url=f"postgresql://{settings.pg_user}:{password}@127.0.0.1:{at.pg_primary}/"
                               f"{settings.pg_database}",
        redis_url=at.redis_url, kafka_bootstrap=at.kafka_servers)


class BeanpayProcess:
    """One process of a beanpay service on the HA stack, with its own ops port (and API port)."""

    def __init__(self, settings: Settings, service: str, copy: int, slot: int) -> None:
        self.settings, self.service, self.copy = settings, service, copy
        self.name = f"{service}-{copy + 1}"
        self.paths = Paths(settings, f"ha/beanpay/{self.name}")
        at = ports(settings)
        self.ops_port = at.ops(slot)
        self.api_port = at.api_process(copy) if service == "api" else None

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.ops_port,) + ((self.api_port,) if self.api_port else ())

    def install(self) -> None:
        pass

    def env(self) -> dict[str, str]:
        s = ha_settings(self.settings)
        env = {**os.environ, "BEANPAY_STATE_DIR": str(self.settings.state_path),
               "BEANPAY_DATABASE_URL": s.dsn, "BEANPAY_REDIS_URL": s.redis_dsn,
               "BEANPAY_KAFKA_BOOTSTRAP": s.kafka_servers, "BEANPAY_METRICS_PORT": str(self.ops_port)}
        if self.api_port is not None:
            env["BEANPAY_API_PORT"] = str(self.api_port)
        return env

    def start(self) -> None:
        self.paths.make()
        spawn([BEANPAY, *COMMANDS[self.service]], log=self.paths.log, pidfile=self.paths.pidfile, env=self.env())

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid)

    def pid(self) -> int | None:
        return read_pid(self.paths.pidfile, " ".join(COMMANDS[self.service]))

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def status(self) -> Status:
        pid = self.pid()
        where = f"api 127.0.0.1:{self.api_port}, " if self.api_port else ""
        return Status(self.name, f"{where}ops 127.0.0.1:{self.ops_port}", pid, "", pid is not None and self.healthy())


@dataclass(frozen=True)
class Layers:
    """The HA stack's parts, in start order."""

    etcd: list[EtcdMember]
    postgres: list[PatroniNode]
    haproxy: HAProxy
    kafka: list[Kafka]
    redis: list[RedisNode]
    sentinels: list[Sentinel]
    beanpay: list[BeanpayProcess]

    def every(self) -> list[Service]:
        return [*self.etcd, *self.postgres, self.haproxy, *self.kafka, *self.redis, *self.sentinels, *self.beanpay]


def layers(settings: Settings) -> Layers:
    at = ports(settings)
    voters = ",".join(f"{i + 1}@127.0.0.1:{at.kafka_controller(i)}" for i in range(MEMBERS))
    cluster = settings.state_path / "ha" / "kafka-cluster"
    services = list(COMMANDS)
    return Layers(
        etcd=[EtcdMember(settings, i) for i in range(MEMBERS)],
        postgres=[PatroniNode(settings, i) for i in range(PG_NODES)],
        haproxy=HAProxy(settings),
        kafka=[Kafka(settings, node_id=i + 1, port=at.kafka(i), controller_port=at.kafka_controller(i),
                     voters=voters, replicas=MEMBERS, servers=at.kafka_servers, cluster_dir=cluster,
                     name=f"ha/kafka-{i + 1}") for i in range(MEMBERS)],
        redis=[RedisNode(settings, i) for i in range(2)],
        sentinels=[Sentinel(settings, i) for i in range(MEMBERS)],
        beanpay=[BeanpayProcess(settings, svc, c, n * COPIES + c) for n, svc in enumerate(services)
                 for c in range(COPIES)])


def _start(svcs: Sequence[Service], *, wait: bool = True, timeout: float = 90) -> list[Service]:
    """Start those down (restart those unhealthy); wait for each started one unless told not to."""
    started = []
    for svc in svcs:
        svc.install()
        pid = svc.pid()
        if pid is not None and svc.healthy():
            _say(f"{svc.name:14} already running (pid {pid})")
            continue
        if pid is not None:
            svc.stop()
        busy = [p for p in svc.ports if port_open(p)]
        if busy:
            raise StackError(f"{svc.name}: port {busy[0]} is in use; set BEANPAY_HA_PORTS_BASE to free ports")
        svc.start()
        started.append(svc)
    if wait:
        for svc in started:
            wait_until(svc.healthy, timeout=timeout, what=svc.name, log=_log_of(svc))
            _say(f"{svc.name:14} started (pid {svc.pid()})")
    return started


def _log_of(svc: Service) -> Path | None:
    paths = getattr(svc, "paths", None)
    return paths.log if isinstance(paths, Paths) else None


def up(settings: Settings, with_beanpay: bool = True) -> None:
    plain.up(settings, ["anvil", "btcd"])  # the chains beanpay follows
    ha = layers(settings)
    _start(ha.etcd)
    _start(ha.postgres[:1], timeout=120)  # the first node bootstraps the cluster (initdb) and leads
    _start(ha.postgres[1:], timeout=180)  # the second clones it and streams from it
    wait_until(lambda: sorted(ha.postgres[0].cluster().values()) == ["leader", "sync_standby"], timeout=120,
               what="a PostgreSQL leader with a synchronous standby")
    ha.postgres[0].apply_dynamic()  # an existing cluster gets today's failover settings too (any node takes it)
    _start([ha.haproxy])
    wait_until(lambda: _primary_through_haproxy(settings), timeout=60, what="the primary through HAProxy")
    # retried: a leader elected a moment ago may still hand over (the read-only refusal says so)
    wait_until(lambda: asyncio.run(_ensure_database(settings)), timeout=60, what="beanpay's database")
    launched = [k for k in ha.kafka if not (k.pid() is not None and k.healthy())]
    for node in launched:  # all three before waiting: a node is healthy once a quorum of controllers is up
        node.launch()
    for node in launched:
        node.wait()
        _say(f"{node.name:14} started (pid {node.pid()})")
    ha.kafka[0].create_topics()
    _start(ha.redis)
    _start(ha.sentinels, timeout=30)
    if with_beanpay:
        _start(ha.beanpay, timeout=120)
        wait_until(lambda: _api_behind_haproxy(settings), timeout=30, what="the API processes behind HAProxy")


def _api_behind_haproxy(settings: Settings) -> bool:
    servers = {k: v for k, v in HAProxy(settings).backends().items() if k.startswith("api/")}
    return len(servers) == COPIES and set(servers.values()) == {"UP"}


def down(settings: Settings) -> None:
    for svc in reversed(layers(settings).every()):
        if svc.pid() is None:
            continue
        svc.stop()
        _say(f"{svc.name:14} stopped")


def status(settings: Settings) -> list[Status]:
    return [svc.status() for svc in layers(settings).every()]


def _primary_through_haproxy(settings: Settings) -> bool:
    """HAProxy has checked every node (a fresh one counts all as up until their first checks) and sends
    writes to exactly one, which is writable."""
    up = [k for k, v in HAProxy(settings).backends().items() if k.startswith("postgres-primary/") and v == "UP"]
    leader = [n for n, role in PatroniNode(settings, 0).cluster().items() if role == "leader"]
    return (up == [f"postgres-primary/{name}" for name in leader]
            and bool(asyncio.run(_superuser_query(settings, "SELECT NOT pg_is_in_recovery()"))))


async def _superuser_query(settings: Settings, sql: str) -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=ports(settings).pg_primary, user="postgres",
                                 password=settings.pg_password, database="postgres", timeout=3)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _ensure_database(settings: Settings) -> bool:
    """beanpay's role and database on the cluster, then its migrations (all through HAProxy)."""
    conn = await asyncpg.connect(host="127.0.0.1", port=ports(settings).pg_primary, user="postgres",
                                 password=settings.pg_password, database="postgres", timeout=5)
    try:
        user, db = settings.pg_user, settings.pg_database
        password = (settings.pg_password or "").replace("'", "''")
        verb = "ALTER" if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user) else "CREATE"
        await conn.execute(f"{verb} ROLE \"{user}\" LOGIN CREATEDB PASSWORD '{password}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
            await conn.execute(f'CREATE DATABASE "{db}" OWNER "{user}"')
    finally:
        await conn.close()
    await migrate(ha_settings(settings).dsn)
    return True


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
