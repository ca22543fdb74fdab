"""etcd v3 members, Patroni's store. Built from the Go module proxy: etcd's server module has replace
directives, so `go install` refuses it; a wrapper module whose main calls `etcdmain.Main` builds it."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import msgspec

from beanpay.config import Settings
from beanpay.deploy.devstack.ha.ports import MEMBERS, HaPorts, Region, region_a
from beanpay.deploy.devstack.process import StackError, run, spawn, tool_version
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status

ETCD_VERSION = "v3.7.3"
WRAPPER = """package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""


def build_etcd(binary: Path, log: Path) -> None:
    if shutil.which("go") is None:
        raise StackError("go not found: install Go >= 1.25")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix="etcd-build-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module beanpay.local/etcd\n\ngo 1.25\n")
        (work / "main.go").write_text(WRAPPER)
        run(["go", "get", f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], env=env, cwd=work, log=log)
        run(["go", "mod", "tidy"], env=env, cwd=work, log=log)
        run(["go", "build", "-o", str(binary), "."], env=env, cwd=work, log=log)


class _Health(msgspec.Struct):
    health: str


class EtcdMember(PidfileProcess):
    def __init__(self, settings: Settings, index: int, region: Region | None = None) -> None:
        self.settings, self.index = settings, index
        self.region = region or region_a(settings)
        self.name = f"etcd-{index + 1}"
        self.paths = Paths(settings, f"{self.region.folder}/{self.name}")
        self.at: HaPorts = self.region.at
        self.marker = f"--name {self.name} "

    @property
    def binary(self) -> Path:
        return self.paths.cache / "go-bin" / f"etcd-{ETCD_VERSION}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.at.etcd_client(self.index)}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.at.etcd_client(self.index), self.at.etcd_peer(self.index))

    def install(self) -> None:
        if not self.binary.exists():
            self.paths.make()
            build_etcd(self.binary, self.paths.log)

    def start(self) -> None:
        """Launch only: a member is healthy once a majority is up, so the stack waits for all of them."""
        self.paths.make()
        peers = ",".join(f"etcd-{i + 1}=http://127.0.0.1:{self.at.etcd_peer(i)}" for i in range(MEMBERS))
        spawn([str(self.binary), "--name", self.name, "--data-dir", str(self.paths.data),
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", f"http://127.0.0.1:{self.at.etcd_peer(self.index)}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.at.etcd_peer(self.index)}",
               "--initial-cluster", peers, "--initial-cluster-state", "new",
               "--initial-cluster-token", f"beanpay-{self.region.folder}", "--heartbeat-interval", "100",
               "--election-timeout", "1000", "--log-level", "warn"],
              log=self.paths.log, pidfile=self.paths.pidfile)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:  # noqa: S310 - loopback
                return msgspec.json.decode(r.read(), type=_Health).health == "true"
        except (OSError, msgspec.DecodeError):
            return False

    def status(self) -> Status:
        pid = self.pid()
        version = tool_version([str(self.binary), "--version"]).removeprefix("etcd Version: ")
        return Status(self.name, self.url, pid, version, pid is not None and self.healthy())
