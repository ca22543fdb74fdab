"""PostgreSQL nodes managed by Patroni (PyPI), with etcd as its store: Patroni elects the primary, keeps one
standby synchronous (a commit is acknowledged once it is on both), and promotes that standby when the
primary's leader key expires. Patroni runs PostgreSQL's own binaries as the `postgres` user."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from beanpay.config import Settings
from beanpay.deploy.devstack.ha.ports import MEMBERS, HaPorts, Region, region_a
from beanpay.deploy.devstack.postgres import _bindir
from beanpay.deploy.devstack.process import run, spawn
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status

PATRONI = "4.1.5"
SCOPE = "beanpay"
# The leader key lives `ttl` seconds (Patroni's least is 20) and needs loop_wait + 2 * retry_timeout <= ttl.
# A primary whose PostgreSQL crashed gives the key up at once (primary_start_timeout 0: the synchronous
# standby holds every acknowledged commit, so promoting it loses nothing); a node lost whole (Patroni too)
# is replaced when its key expires, within about ttl + loop_wait.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 1, 5


def patroni_home(settings: Settings) -> Path:
    """A virtualenv of the system Python (the `postgres` user cannot read the project's own, under /root)."""
    return settings.state_path / "cache" / f"patroni-{PATRONI}"


def install_patroni(settings: Settings, log: Path) -> Path:
    home = patroni_home(settings)
    binary, done = home / "bin" / "patroni", home / ".installed"
    if not done.exists():  # only a complete install counts
        shutil.rmtree(home, ignore_errors=True)
        run(["/usr/bin/python3", "-m", "venv", str(home)], log=log)
        run([str(home / "bin" / "pip"), "install", "-q", f"patroni[etcd3,psycopg3]=={PATRONI}", "psycopg[binary]"],
            log=log)
        done.touch()
    return binary


def ha_secret(settings: Settings, name: str) -> str:
    """A password of the HA stack (replication, rewind), made once into the state folder (dev only)."""
    path = settings.state_path / "secrets" / f"ha_{name}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


class PatroniNode(PidfileProcess):
    """A node of a region's cluster. In a standby region the cluster is a Patroni standby cluster: its
    standby leader streams from the active region's primary (through the link between the regions), and
    the other node cascades from it; nothing there is writable until the region is promoted."""

    stop_timeout = 60.0  # Patroni stops PostgreSQL itself, then exits

    def __init__(self, settings: Settings, index: int, region: Region | None = None) -> None:
        self.settings, self.index = settings, index
        self.region = region or region_a(settings)
        self.name = self.region.pg_name(index)
        self.paths = Paths(settings, f"{self.region.folder}/{self.name}")
        self.at: HaPorts = self.region.at
        self.user = "postgres" if os.geteuid() == 0 else None
        self.marker = f"{self.paths.run}/patroni.yml"

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.at.patroni(self.index)}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.at.pg(self.index), self.at.patroni(self.index))

    def install(self) -> None:
        _bindir()
        self.paths.make()
        install_patroni(self.settings, self.paths.log)

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            shutil.chown(path, self.user, self.user)

    def dynamic(self) -> dict[str, object]:
        """The cluster-wide settings Patroni keeps in etcd (bootstrap writes them once; `apply_dynamic`
        brings an existing cluster up to date)."""
        return {
            "ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
            # the synchronous standby holds every acknowledged commit; lag here is WAL not yet replayed
            "maximum_lag_on_failover": 16 * 1024 * 1024,
            "primary_start_timeout": 0,
            # a commit waits for the standby; with the standby gone, the primary goes on alone
            # (strict mode would stop writes instead: availability chosen over a second copy)
            "synchronous_mode": True, "synchronous_mode_strict": False,
            "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": {
                "max_connections": 300, "shared_buffers": "128MB", "wal_level": "replica",
                "hot_standby": "on", "max_wal_senders": 10, "max_replication_slots": 10,
                "wal_log_hints": "on", "synchronous_commit": "on", "wal_keep_size": "256MB"}},
        }

    def standby_cluster(self) -> dict[str, object]:
        """Where a standby region's cluster streams from: the active region's primary, through the link."""
        return {"host": "127.0.0.1", "port": self.at.link_pg, "create_replica_methods": ["basebackup"]}

    def apply_dynamic(self, extra: dict[str, object] | None = None) -> None:
        """PATCH the cluster's dynamic settings (never `standby_cluster`: that is set at bootstrap and only
        promotion removes it, so re-running `up` cannot demote a promoted region)."""
        self.patch_config({**self.dynamic(), **(extra or {})})

    def patch_config(self, changes: dict[str, object]) -> None:
        body = json.dumps(changes).encode()
        request = urllib.request.Request(f"{self.rest}/config", data=body, method="PATCH",  # noqa: S310
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback
            pass

    def config(self) -> dict[str, object]:
        s, at, run_dir = self.settings, self.at, self.paths.run
        pg = at.pg(self.index)
        dcs = self.dynamic()
        if self.region.upstream is not None:
            dcs["standby_cluster"] = self.standby_cluster()
        return {
            "scope": SCOPE, "name": self.name, "namespace": "/beanpay/",
            "log": {"level": "INFO"},  # a line per loop: what the node decided and why
            "restapi": {"listen": f"127.0.0.1:{at.patroni(self.index)}",
                        "connect_address": f"127.0.0.1:{at.patroni(self.index)}"},
            "etcd3": {"hosts": [f"127.0.0.1:{at.etcd_client(i)}" for i in range(MEMBERS)]},
            "bootstrap": {
                "dcs": dcs,
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{pg}", "connect_address": f"127.0.0.1:{pg}",
                "data_dir": str(self.paths.data), "bin_dir": str(_bindir()), "pgpass": str(run_dir / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": s.pg_password or ""},
                    "replication": {"username": "replicator", "password": ha_secret(s, "replication")},
                    "rewind": {"username": "rewinder", "password": ha_secret(s, "rewind")},
                },
                "parameters": {"unix_socket_directories": str(run_dir)},
                # a new replica's copy starts at once (the default spread checkpoint can take minutes)
                "basebackup": {"checkpoint": "fast"},
                "pg_hba": ["local all all peer", "host replication replicator 127.0.0.1/32 scram-sha-256",
                           "host all all 127.0.0.1/32 scram-sha-256"],
            },
            "tags": {"nofailover": False, "noloadbalance": False},
        }

    def start(self) -> None:
        self.paths.make()
        for d in (self.paths.root / "ha" / self.name, self.paths.data, self.paths.run):
            d.mkdir(parents=True, exist_ok=True)
            self._chown(d)
        self.paths.data.chmod(0o700)
        conf = self.paths.run / "patroni.yml"
        conf.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        conf.chmod(0o600)  # it holds the cluster's passwords
        self._chown(conf)
        self.paths.log.touch()
        binary = str(patroni_home(self.settings) / "bin" / "patroni")
        home = {"HOME": str(self.paths.run)} if self.user is not None else {}
        spawn([binary, str(conf)], log=self.paths.log, pidfile=self.paths.pidfile, user=self.user,
              env={**os.environ, **home}, cwd=self.paths.run)

    def state(self) -> dict[str, object]:
        """Patroni's own view of the node: role (primary, replica), state (running, ...), timeline."""
        try:
            with urllib.request.urlopen(f"{self.rest}/patroni", timeout=2) as r:  # noqa: S310 - loopback
                return dict(json.loads(r.read()))
        except urllib.error.HTTPError as exc:  # 503 still carries the state
            return dict(json.loads(exc.read() or b"{}"))
        except (OSError, ValueError):
            return {}

    def healthy(self) -> bool:
        return self.state().get("state") in ("running", "streaming")

    def cluster(self) -> dict[str, str]:
        """member -> role as this node's Patroni sees the cluster: leader, sync_standby, replica."""
        try:
            with urllib.request.urlopen(f"{self.rest}/cluster", timeout=2) as r:  # noqa: S310 - loopback
                members = json.loads(r.read())["members"]
        except (OSError, ValueError, KeyError):
            return {}
        return {m["name"]: m["role"] for m in members if m.get("state") in ("running", "streaming")}

    def status(self) -> Status:
        pid, state = self.pid(), self.state()
        role = str(state.get("role", "?"))
        version = str(state.get("server_version", "?"))
        return Status(self.name, f"127.0.0.1:{self.at.pg(self.index)}", pid, version,
                      pid is not None and state.get("state") == "running", f"{role}, patroni {self.rest}")

