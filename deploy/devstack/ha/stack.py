"""Bring the highly available stack up or down, idempotently, and report its state (`beanpay dev up --ha`).

Order matters once: etcd's members before Patroni (its store), the first PostgreSQL node before the second
(the second clones it), HAProxy before anything connects, then the beanpay role, database and migrations
through HAProxy, Kafka's three nodes together (a quorum), Redis before its Sentinels, and beanpay last.
Kafka and Redis need nothing of the others: they start while PostgreSQL bootstraps.
The chains (anvil, btcd) and the Lightning nodes are the plain stack's: beanpay follows nodes it does not run.
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
from beanpay.deploy.devstack.ha.haproxy import Front, HAProxy
from beanpay.deploy.devstack.ha.link import Link
from beanpay.deploy.devstack.ha.mirror_maker import MirrorMaker
from beanpay.deploy.devstack.ha.patroni import PatroniNode
from beanpay.deploy.devstack.ha.ports import COPIES, MEMBERS, PG_NODES, HaPorts, Region, region_a, region_b
from beanpay.deploy.devstack.ha.redis_ha import RedisNode, Sentinel
from beanpay.deploy.devstack.kafka import Kafka
from beanpay.deploy.devstack.process import StackError, port_open, spawn, wait_until
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Service, Status
from beanpay.events.relay import replay_events
from beanpay.migrate import migrate
from beanpay.services import commands

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
COMMANDS = commands()
# what beanpay follows and does not run itself: the chains, and the Lightning nodes (the platform's, which
# the lightning service watches, and a customer's with a channel to it); both regions follow the same ones
NODES = ["anvil", "btcd", "lnd-merchant", "lnd-customer"]


def ha_settings(settings: Settings, region: Region | None = None) -> Settings:
    """The settings beanpay runs with on the HA stack (in a region): PostgreSQL through HAProxy, Redis
    through its Sentinels, every Kafka broker to bootstrap from."""
    at = (region or region_a(settings)).at
    password = quote(settings.pg_password or "", safe="")
    return msgspec.structs.replace(
        settings, database_url=f"postgresql://{settings.pg_user}:{password}@127.0.0.1:{at.pg_primary}/"
                               f"{settings.pg_database}",
        redis_url=at.redis_url, kafka_bootstrap=at.kafka_servers)


class BeanpayProcess(PidfileProcess):
    """One process of a beanpay service on the HA stack, with its own ops port (and API port)."""

    def __init__(self, settings: Settings, service: str, copy: int, slot: int, region: Region | None = None) -> None:
        self.settings, self.service, self.copy = settings, service, copy
        self.region = region or region_a(settings)
        self.name = f"{service}-{copy + 1}"
        self.paths = Paths(settings, f"{self.region.folder}/beanpay/{self.name}")
        self.marker = " ".join(COMMANDS[service])
        at = self.region.at
        self.ops_port = at.ops(slot)
        self.api_port = at.api_process(copy) if service == "api" else None

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.ops_port,) + ((self.api_port,) if self.api_port else ())

    def install(self) -> None:
        pass

    def env(self) -> dict[str, str]:
        s = ha_settings(self.settings, self.region)
        env = {**os.environ, "BEANPAY_STATE_DIR": str(self.settings.state_path),
               "BEANPAY_DATABASE_URL": s.dsn, "BEANPAY_REDIS_URL": s.redis_dsn,
               "BEANPAY_KAFKA_BOOTSTRAP": s.kafka_servers, "BEANPAY_METRICS_PORT": str(self.ops_port)}
        if self.api_port is not None:
            env["BEANPAY_API_PORT"] = str(self.api_port)
        return env

    def start(self) -> None:
        self.paths.make()
        spawn([BEANPAY, *COMMANDS[self.service]], log=self.paths.log, pidfile=self.paths.pidfile, env=self.env())

    def healthy(self) -> bool:
        return self._answers("/readyz")

    def alive(self) -> bool:
        """Started and serving its ops endpoint (it does so last), whether or not what it needs is there."""
        return self._answers("/healthz")

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}{path}", timeout=2) as r:
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
    # a standby region's only: its link to the active one, MirrorMaker from there, the front clients use
    link: list[Link]
    mirror: list[MirrorMaker]
    front: list[Front]

    def every(self) -> list[Service]:
        return [*self.link, *self.etcd, *self.postgres, self.haproxy, *self.kafka, *self.mirror, *self.front,
                *self.redis, *self.sentinels, *self.beanpay]


def layers(settings: Settings, region: Region | None = None) -> Layers:
    region = region or region_a(settings)
    at, standby_at, standby = region.at, HaPorts(settings.ha_standby_ports_base), region.upstream is not None
    voters = ",".join(f"{i + 1}@127.0.0.1:{at.kafka_controller(i)}" for i in range(MEMBERS))
    cluster = settings.state_path / region.folder / "kafka-cluster"
    services = list(COMMANDS)
    return Layers(
        etcd=[EtcdMember(settings, i, region) for i in range(MEMBERS)],
        postgres=[PatroniNode(settings, i, region) for i in range(PG_NODES)],
        haproxy=HAProxy(settings, region),
        # the active region's brokers also listen for the standby region, which reaches them through the link
        kafka=[Kafka(settings, node_id=i + 1, port=at.kafka(i), controller_port=at.kafka_controller(i),
                     voters=voters, replicas=MEMBERS, servers=at.kafka_servers, cluster_dir=cluster,
                     name=f"{region.folder}/kafka-{i + 1}",
                     remote=None if region.upstream else (at.kafka_remote(i), standby_at.link_kafka(i)))
               for i in range(MEMBERS)],
        redis=[RedisNode(settings, i, region) for i in range(2)],
        sentinels=[Sentinel(settings, i, region) for i in range(MEMBERS)],
        beanpay=[BeanpayProcess(settings, svc, c, n * COPIES + c, region) for n, svc in enumerate(services)
                 for c in range(COPIES)],
        link=[Link(settings, region)] if standby else [],
        mirror=[MirrorMaker(settings, region)] if standby else [],
        front=[Front(settings, region)] if standby else [])


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
        _await(started, timeout)
    return started


def _await(started: Sequence[Service], timeout: float = 90) -> None:
    for svc in started:
        wait_until(svc.healthy, timeout=timeout, what=svc.name, log=_log_of(svc))
        _say(f"{svc.name:14} started (pid {svc.pid()})")


def _log_of(svc: Service) -> Path | None:
    paths = getattr(svc, "paths", None)
    return paths.log if isinstance(paths, Paths) else None


def up(settings: Settings, with_beanpay: bool = True, region: Region | None = None) -> None:
    """Bring a region up. The active region (A) bootstraps its cluster and migrates beanpay's database; a
    standby region's cluster is a copy of A's (see PatroniNode), so it has nothing to create, and its
    beanpay processes start passive (see `start_beanpay`)."""
    region = region or region_a(settings)
    if region.upstream is None:
        plain.up(settings, NODES)
    ha = layers(settings, region)
    _start(ha.link)  # a standby region's link: its database streams through it
    _start(ha.etcd)
    # Kafka and Redis need nothing of PostgreSQL: they start while its cluster bootstraps, waited for below.
    # Kafka's three nodes are all launched before any is waited for (one is healthy once a quorum is up).
    kafka = [k for k in ha.kafka if not (k.pid() is not None and k.healthy())]
    for node in kafka:
        node.launch()
    redis = _start(ha.redis, wait=False)
    _start(ha.postgres[:1], timeout=120)  # the first node bootstraps the cluster (initdb, or a copy of A) and leads
    _start(ha.postgres[1:], timeout=180)  # the second clones it and streams from it
    wait_until(lambda: _two_nodes_streaming(ha.postgres[0]), timeout=120,
               what="a PostgreSQL leader with a streaming standby")
    ha.postgres[0].apply_dynamic()  # an existing cluster gets today's failover settings too (any node takes it)
    for link in ha.link:
        link.add_latency()
    _start([ha.haproxy])
    standby = is_standby(ha.postgres[0])
    if not standby:
        wait_until(lambda: _primary_through_haproxy(settings, region), timeout=60, what="the primary through HAProxy")
        # retried: a leader elected a moment ago may still hand over (the read-only refusal says so)
        wait_until(lambda: asyncio.run(_ensure_database(settings, region)), timeout=60, what="beanpay's database")
    for node in kafka:
        node.wait()
        _say(f"{node.name:14} started (pid {node.pid()})")
    ha.kafka[0].create_topics()
    _start([*ha.mirror, *ha.front], timeout=120)  # MirrorMaker into the new topics, and the front
    _await(redis)
    _start(ha.sentinels, timeout=30)
    if with_beanpay:
        start_beanpay(settings, region)


def start_beanpay(settings: Settings, region: Region | None = None) -> None:
    """Two processes of each service. In a standby region they start passive: their database address
    (HAProxy's writable port) has no server until the region is promoted, so every write and every
    leader lock waits, and none of them is ready; each is waited for until it runs, as a standby region's
    processes have long before a failover (on a busy machine starting them takes tens of seconds)."""
    region = region or region_a(settings)
    ha = layers(settings, region)
    if is_standby(ha.postgres[0]):
        _start(ha.beanpay, wait=False)
        for process in ha.beanpay:
            wait_until(process.alive, timeout=120, what=f"{process.name} (passive)", log=process.paths.log)
        return
    _start(ha.beanpay, timeout=120)
    wait_until(lambda: _api_behind_haproxy(settings, region), timeout=30, what="the API processes behind HAProxy")


def promote(settings: Settings, replay_seconds: float = 300.0) -> int:
    """Make the standby region writable: without `standby_cluster` in its dynamic settings, Patroni promotes
    the standby leader; HAProxy then sends writes to it, and the passive processes find a writable
    database (the leader locks, the checkpoints and every write follow it). The events published in the
    last `replay_seconds` are queued again first, straight on the new primary (HAProxy takes a second to
    send anything there), so they reach this region's Kafka ahead of newer ones. Region A must be gone
    first: two writable regions would part ways. Returns how many events were queued again."""
    region = region_b(settings)
    nodes = layers(settings, region).postgres
    (node, *_) = [n for n in nodes if n.healthy()] or [nodes[0]]
    node.patch_config({"standby_cluster": None})
    wait_until(lambda: any(n.state().get("role") == "primary" for n in nodes), timeout=60,
               what="region b's standby leader to be promoted")
    (primary,) = [n for n in nodes if n.state().get("role") == "primary"]
    direct = msgspec.structs.replace(ha_settings(settings, region), database_url=ha_settings(
        settings, region).dsn.replace(f":{region.at.pg_primary}/", f":{region.at.pg(primary.index)}/"))
    replayed = asyncio.run(replay_events(direct, replay_seconds))
    wait_until(lambda: _primary_through_haproxy(settings, region), timeout=60, what="region b's primary")
    return replayed


def is_standby(node: PatroniNode) -> bool:
    """The node's cluster is a standby cluster (it has a standby leader, no leader)."""
    return "standby_leader" in node.cluster().values()


def _two_nodes_streaming(node: PatroniNode) -> bool:
    roles = sorted(node.cluster().values())
    return len(roles) == PG_NODES and sum(r in ("leader", "standby_leader") for r in roles) == 1


def _api_behind_haproxy(settings: Settings, region: Region) -> bool:
    servers = {k: v for k, v in HAProxy(settings, region).backends().items() if k.startswith("api/")}
    return len(servers) == COPIES and set(servers.values()) == {"UP"}


def down(settings: Settings, region: Region | None = None) -> None:
    for svc in reversed(layers(settings, region).every()):
        if svc.pid() is None:
            continue
        svc.stop()
        _say(f"{svc.name:14} stopped")


def status(settings: Settings, region: Region | None = None) -> list[Status]:
    return [svc.status() for svc in layers(settings, region).every()]


def _primary_through_haproxy(settings: Settings, region: Region | None = None) -> bool:
    """HAProxy has checked every node (a fresh one counts all as up until their first checks) and sends
    writes to exactly one, which is writable."""
    region = region or region_a(settings)
    up = [k for k, v in HAProxy(settings, region).backends().items() if k.startswith("postgres-primary/") and v == "UP"]
    leader = [n for n, role in PatroniNode(settings, 0, region).cluster().items() if role == "leader"]
    return (up == [f"postgres-primary/{name}" for name in leader]
            and bool(asyncio.run(superuser_query(settings, "SELECT NOT pg_is_in_recovery()", region))))


async def superuser_query(settings: Settings, sql: str, region: Region | None = None) -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=(region or region_a(settings)).at.pg_primary, user="postgres",
                                 password=settings.pg_password, database="postgres", timeout=3)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _ensure_database(settings: Settings, region: Region) -> bool:
    """beanpay's role and database on the cluster, then its migrations (all through HAProxy)."""
    conn = await asyncpg.connect(host="127.0.0.1", port=region.at.pg_primary, user="postgres",
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
    await migrate(ha_settings(settings, region).dsn)
    return True


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
