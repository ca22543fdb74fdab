"""MirrorMaker 2 (Kafka Connect's mirror connectors from Maven Central, run as a dedicated MirrorMaker
cluster in the standby region): copies the active region's topics into the standby region's Kafka, reading
through the link between them.

Topics keep their names (IdentityReplicationPolicy) and their partitions, so an order's events stay in
order on their key, and the standby region's consumers, once it is promoted, read the same topics its own
relay then publishes to. Consumer offsets are not translated onto the standby's groups (sync.group.offsets
off): those consumers start from the earliest mirrored event and skip what they already recorded (by event
id), which is slower after a failover but cannot skip an event whose effect the database copy lacks.
What the last moment of mirroring missed, the promoted region publishes again from its journal
(`beanpay outbox-replay`)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from beanpay.config import Settings
from beanpay.deploy.devstack.ha.ports import MEMBERS, Region
from beanpay.deploy.devstack.kafka import DEPLOY, JVM_START_LIGHT, maven_libs
from beanpay.deploy.devstack.process import spawn
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status
from beanpay.events.catalog import ALL_TOPICS

HEARTBEATS = "heartbeats"  # MirrorMaker writes one a second into the target: proof the flow runs


class MirrorMaker(PidfileProcess):
    name = "mirror-maker"
    stop_timeout = 60.0  # a JVM with three connectors to close

    def __init__(self, settings: Settings, region: Region) -> None:
        if region.upstream is None:
            raise ValueError("MirrorMaker runs in a standby region")
        self.settings, self.region = settings, region
        self.paths = Paths(settings, f"{region.folder}/mirror-maker")
        self.at = region.at
        self.marker = f"-Dbeanpay.mirror={region.folder} "

    @property
    def libs(self) -> Path:
        return self.paths.cache / "mirror-maker-libs"

    @property
    def ports(self) -> tuple[int, ...]:
        return ()

    def install(self) -> None:
        if any(self.libs.glob("connect-mirror-*.jar")):
            return
        self.paths.make()
        maven_libs(DEPLOY / "mirror-maker.xml", self.libs, self.paths.log)

    def properties(self) -> str:
        source = ",".join(f"127.0.0.1:{self.at.link_kafka(i)}" for i in range(MEMBERS))  # through the link
        topics = "|".join(re.escape(t) for t in ALL_TOPICS)
        return (
            "clusters = a, b\n"
            f"a.bootstrap.servers = {source}\n"
            f"b.bootstrap.servers = {self.at.kafka_servers}\n"
            "a->b.enabled = true\n"
            f"a->b.topics = {topics}\n"
            "b->a.enabled = false\n"
            "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n"
            f"replication.factor = {MEMBERS}\n"
            f"offset-syncs.topic.replication.factor = {MEMBERS}\n"
            f"heartbeats.topic.replication.factor = {MEMBERS}\n"
            f"checkpoints.topic.replication.factor = {MEMBERS}\n"
            f"offset.storage.replication.factor = {MEMBERS}\n"
            f"status.storage.replication.factor = {MEMBERS}\n"
            f"config.storage.replication.factor = {MEMBERS}\n"
            "emit.heartbeats.interval.seconds = 1\n"
            "sync.group.offsets.enabled = false\n"
            # both regions create beanpay's topics alike (`create_topics`), and ACLs are not used here
            "sync.topic.configs.enabled = false\n"
            "sync.topic.acls.enabled = false\n"
            "refresh.topics.interval.seconds = 10\n"
            "tasks.max = 3\n"
            # what MirrorMaker copies is acknowledged by the standby region's in-sync replicas
            "b.producer.acks = all\n"
            "b.producer.linger.ms = 0\n"
        )

    def start(self) -> None:
        self.paths.make()
        conf = self.paths.run / "mm2.properties"
        conf.write_text(self.properties())
        spawn(["java", "-Xms128m", "-Xmx384m", *JVM_START_LIGHT, f"-Dbeanpay.mirror={self.region.folder}",
               f"-Dlog4j2.configurationFile={DEPLOY / 'mirror-maker-log4j2.xml'}", "-cp", f"{self.libs}/*",
               "org.apache.kafka.connect.mirror.MirrorMaker", str(conf), "--clusters", "b"],
              log=self.paths.log, pidfile=self.paths.pidfile)

    def healthy(self) -> bool:
        return self.pid() is not None and asyncio.run(_has_topic(self.at.kafka_servers, HEARTBEATS))

    def status(self) -> Status:
        pid = self.pid()
        return Status(self.name, "a -> b", pid, "4.1.1", pid is not None and self.healthy(),
                      "region a's topics into region b's Kafka")


async def _has_topic(servers: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        return topic in await asyncio.wait_for(admin.list_topics(), 5)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
