"""Apache Kafka 4.x in KRaft mode, single node, from Maven Central jars (no tarball download)."""

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
from beanpay.deploy.devstack.process import StackError, read_pid, run, spawn, stop_pid, wait_until
from beanpay.deploy.devstack.service import Paths, Status
from beanpay.events.catalog import ALL_TOPICS

DEPLOY = Path(__file__).resolve().parents[1] / "kafka"
PARTITIONS = 3


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = Paths(settings, self.name)

    @property
    def libs(self) -> Path:
        return self.paths.cache / "kafka-libs"

    def _broker_jar(self) -> Path | None:
        jars = sorted(self.libs.glob("kafka_2.13-*.jar"))
        return jars[0] if jars else None

    def install(self) -> None:
        if self._broker_jar() is not None:
            return
        if shutil.which("mvn") is None:
            raise StackError("mvn not found: apt-get install -y maven")
        self.paths.make()
        tmp = self.libs.with_suffix(".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        run(["mvn", "-B", "-q", "-f", str(DEPLOY / "pom.xml"), "dependency:copy-dependencies",
             f"-DoutputDirectory={tmp}"], log=self.paths.log)
        tmp.rename(self.libs)  # only a complete download counts as cached

    def _java(self, *args: str) -> list[str]:
        return ["java", "-Xms256m", "-Xmx512m", f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.xml'}",
                "-cp", f"{self.libs}/*", *args]

    def _write_config(self) -> Path:
        s, data = self.settings, self.paths.data
        conf = self.paths.run / "server.properties"
        conf.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            f"log.dirs={data}\n"
            f"num.partitions={PARTITIONS}\n"
            "offsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\n"
            "share.coordinator.state.topic.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\n"
            "auto.create.topics.enable=true\n"
        )
        return conf

    def start(self) -> None:
        self.paths.make()
        conf = self._write_config()
        if not (self.paths.data / "meta.properties").exists():
            run(self._java("kafka.tools.StorageTool", "format", "-t", _cluster_id(self.paths.run),
                           "-c", str(conf)), log=self.paths.log)
        spawn(self._java("kafka.Kafka", str(conf)), log=self.paths.log, pidfile=self.paths.pidfile,
              env={**os.environ, "KAFKA_HEAP_OPTS": ""})
        wait_until(self.healthy, timeout=90, what="kafka", log=self.paths.log)
        asyncio.run(self._create_topics())

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_servers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [NewTopic(t, PARTITIONS, 1) for t in ALL_TOPICS if t not in existing]
            if missing:
                await admin.create_topics(missing)
        finally:
            await admin.close()

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.kafka_port, self.settings.kafka_controller_port)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid, timeout=60)

    def pid(self) -> int | None:
        return read_pid(self.paths.pidfile, "kafka.Kafka")

    def healthy(self) -> bool:
        return asyncio.run(_probe(self.settings.kafka_servers))

    def status(self) -> Status:
        pid = self.pid()
        jar = self._broker_jar()
        version = jar.stem.split("-", 1)[1] if jar else "not installed"
        return Status(self.name, self.settings.kafka_servers, pid, version,
                      pid is not None and self.healthy())


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
