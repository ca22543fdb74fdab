"""Apache Kafka 4.x in KRaft mode from Maven Central jars (no tarball download): one node for the dev
stack, or one member of a three-node cluster (each a broker and a controller) for the highly available one."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import uuid
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from beanpay.config import Settings
from beanpay.deploy.devstack.process import StackError, run, spawn, wait_until
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status
from beanpay.events.catalog import ALL_TOPICS

DEPLOY = Path(__file__).resolve().parents[1] / "kafka"
PARTITIONS = 3


# a dev or test broker is started often and loaded lightly: the client compiler alone and one GC thread
# take about 40% less CPU to start one (measured: 4.3 s against 6 to 8 s), which the drills' six brokers feel
JVM_START_LIGHT = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class Kafka(PidfileProcess):
    stop_timeout = 60.0

    def __init__(self, settings: Settings, *, node_id: int = 1, port: int | None = None,
                 controller_port: int | None = None, voters: str | None = None, replicas: int = 1,
                 servers: str | None = None, cluster_dir: Path | None = None, name: str = "kafka",
                 remote: tuple[int, int] | None = None) -> None:
        self.settings = settings
        self.name = name
        self.paths = Paths(settings, self.name)
        # a cluster member's command line names it (its pid file alone could be a reused pid)
        self.marker = "kafka.Kafka" if name == "kafka" else f"-Dbeanpay.kafka.node={name} "
        self.node_id, self.replicas = node_id, replicas
        self.port = port or settings.kafka_port
        self.controller_port = controller_port or settings.kafka_controller_port
        self.voters = voters or f"1@127.0.0.1:{self.controller_port}"
        self.servers = servers or settings.kafka_servers  # the cluster's bootstrap list
        self.cluster_dir = cluster_dir or self.paths.run  # where the cluster id is kept (shared by members)
        # (listen port, advertised port): a listener for the other region, advertised at the link's port
        # that leads to it, so a client there (MirrorMaker 2) reaches every broker through the link
        self.remote = remote

    @property
    def libs(self) -> Path:
        return self.paths.cache / "kafka-libs"

    def _broker_jar(self) -> Path | None:
        jars = sorted(self.libs.glob("kafka_2.13-*.jar"))
        return jars[0] if jars else None

    def install(self) -> None:
        if self._broker_jar() is not None:
            return
        self.paths.make()
        maven_libs(DEPLOY / "pom.xml", self.libs, self.paths.log)

    def _java(self, *args: str) -> list[str]:
        return ["java", "-Xms256m", "-Xmx512m", *JVM_START_LIGHT, f"-Dbeanpay.kafka.node={self.name}",
                f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.xml'}",
                "-cp", f"{self.libs}/*", *args]

    def _write_config(self) -> Path:
        data, n = self.paths.data, self.replicas
        isr = min(2, n)  # with three replicas, a write is acknowledged by two (producers send acks=all)
        conf = self.paths.run / "server.properties"
        listen = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        advertised = f"PLAINTEXT://127.0.0.1:{self.port}"
        protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        if self.remote is not None:
            listen += f",REMOTE://127.0.0.1:{self.remote[0]}"
            advertised += f",REMOTE://127.0.0.1:{self.remote[1]}"
            protocols += ",REMOTE:PLAINTEXT"
        conf.write_text(
            "process.roles=broker,controller\n"
            f"node.id={self.node_id}\n"
            f"controller.quorum.voters={self.voters}\n"
            f"listeners={listen}\n"
            f"advertised.listeners={advertised}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            f"listener.security.protocol.map={protocols}\n"
            f"log.dirs={data}\n"
            f"num.partitions={PARTITIONS}\n"
            f"default.replication.factor={n}\n"
            f"min.insync.replicas={isr}\n"
            f"offsets.topic.replication.factor={n}\n"
            f"transaction.state.log.replication.factor={n}\n"
            f"transaction.state.log.min.isr={isr}\n"
            f"share.coordinator.state.topic.replication.factor={n}\n"
            f"share.coordinator.state.topic.min.isr={isr}\n"
            "unclean.leader.election.enable=false\n"
            "group.initial.rebalance.delay.ms=0\n"
            "auto.create.topics.enable=true\n"
        )
        return conf

    def start(self) -> None:
        self.launch()
        self.wait()
        self.create_topics()

    def launch(self) -> None:
        """Start the process; a cluster's members are all launched before any is waited for (a quorum)."""
        self.paths.make()
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        conf = self._write_config()
        if not (self.paths.data / "meta.properties").exists():
            run(self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id(self.cluster_dir),
                           "-c", str(conf)), log=self.paths.log)
        spawn(self._java("kafka.Kafka", str(conf)), log=self.paths.log, pidfile=self.paths.pidfile,
              env={**os.environ, "KAFKA_HEAP_OPTS": ""})

    def wait(self) -> None:
        wait_until(self.healthy, timeout=120, what=self.name, log=self.paths.log)

    def create_topics(self) -> None:
        asyncio.run(self._create_topics())

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [NewTopic(t, PARTITIONS, self.replicas) for t in ALL_TOPICS if t not in existing]
            if missing:
                await admin.create_topics(missing)
        finally:
            await admin.close()

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port) + ((self.remote[0],) if self.remote else ())

    def healthy(self) -> bool:
        return asyncio.run(_probe(f"127.0.0.1:{self.port}"))

    def status(self) -> Status:
        pid = self.pid()
        jar = self._broker_jar()
        version = jar.stem.split("-", 1)[1] if jar else "not installed"
        return Status(self.name, f"127.0.0.1:{self.port}", pid, version,
                      pid is not None and self.healthy())


def maven_libs(pom: Path, libs: Path, log: Path) -> None:
    """The jars `pom` depends on, fetched from Maven Central into `libs` (only a complete download lands)."""
    if shutil.which("mvn") is None:
        raise StackError("mvn not found: apt-get install -y maven")
    tmp = libs.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    run(["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"], log=log)
    tmp.rename(libs)


def _cluster_id(run_dir: Path) -> str:
    """A KRaft cluster id (base64 of a UUID, as StorageTool random-uuid prints), kept with the data."""
    path = run_dir / "cluster.id"
    if not path.exists():
        cluster_id = "-"
        while cluster_id.startswith("-"):  # as Kafka's own Uuid.randomUuid: a leading '-' reads as a CLI flag
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        path.write_text(cluster_id)
    return path.read_text().strip()


async def _probe(servers: str) -> bool:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connections are expected here
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
