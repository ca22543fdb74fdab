"""HAProxy (Debian) in front of PostgreSQL and the API processes.

PostgreSQL: HAProxy asks each node's Patroni REST API (`GET /primary` answers 200 only on the leader)
every second and sends connections to the one that answers; when the leader changes, connections to the
old one are cut (`on-marked-down shutdown-sessions`) and clients reconnect to the new one. Chosen over
multi-host connection strings (`target_session_attrs=read-write`): those find a writable host only at
connect time, and a demoted primary that still accepts connections would keep them; HAProxy follows what
Patroni says, and every client (asyncpg, psql, pgBackRest) sees one address.

API: round robin over the processes with `/readyz` health checks; a request that fails to connect, or
gets no answer because its process died, is sent again to another (`retry-on`, `option redispatch`).
Every mutating request carries an Idempotency-Key, so a re-sent one is answered, never done twice.
Event streams (SSE) are held open: their backend allows long idle times.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from beanpay.config import Settings
from beanpay.deploy.devstack.ha.ports import COPIES, PG_NODES, Region, region_a
from beanpay.deploy.devstack.process import StackError, run, tool_version
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status


def _head(run_dir: str, maxconn: int) -> str:
    """What every HAProxy here starts with (each has its own pid file and admin socket)."""
    return f"""# written by `beanpay dev up --ha` on every start
global
    maxconn {maxconn}
    pidfile {run_dir}/haproxy.pid
    stats socket {run_dir}/haproxy.sock mode 600 level admin
    log stdout format raw local0 warning

defaults
    log global
    timeout connect 2s
    timeout check 1s
    retries 3
"""


def config(region: Region, run_dir: str) -> str:
    at = region.at
    pg = "\n".join(f"    server {region.pg_name(i)} 127.0.0.1:{at.pg(i)} check port {at.patroni(i)}"
                   for i in range(PG_NODES))
    api = "\n".join(f"    server api-{i + 1} 127.0.0.1:{at.api_process(i)} check" for i in range(COPIES))
    return _head(run_dir, 8000) + f"""
listen postgres-primary
    bind 127.0.0.1:{at.pg_primary}
    mode tcp
    timeout client 30m
    timeout server 30m
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
{pg}

listen postgres-replicas
    bind 127.0.0.1:{at.pg_replicas}
    mode tcp
    timeout client 30m
    timeout server 30m
    option httpchk GET /replica
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
{pg}

frontend api
    bind 127.0.0.1:{at.api}
    mode http
    option http-buffer-request
    timeout client 60s
    timeout http-request 15s
    acl event_stream path_end /events
    use_backend api-streams if event_stream
    default_backend api

backend api
    mode http
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    retry-on conn-failure empty-response response-timeout 503
    option redispatch 1
    timeout server 30s
    default-server inter 1s fall 2 rise 2 observe layer7 error-limit 3 on-error mark-down
{api}

backend api-streams
    mode http
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    retry-on conn-failure
    option redispatch 1
    timeout server 1h
    timeout tunnel 1h
    default-server inter 1s fall 2 rise 2
{api}

listen stats
    bind 127.0.0.1:{at.haproxy_stats}
    mode http
    timeout client 10s
    timeout server 10s
    stats enable
    stats uri /
"""


class HAProxy(PidfileProcess):
    name = marker = "haproxy"

    def __init__(self, settings: Settings, region: Region | None = None) -> None:
        self.settings = settings
        self.region = region or region_a(settings)
        self.paths = Paths(settings, f"{self.region.folder}/haproxy")
        self.at = self.region.at

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.at.pg_primary, self.at.pg_replicas, self.at.api, self.at.haproxy_stats)

    def install(self) -> None:
        if shutil.which("haproxy") is None:
            raise StackError("haproxy not found: apt-get install -y haproxy")

    def start(self) -> None:
        self.paths.make()
        conf = self.paths.run / "haproxy.cfg"
        conf.write_text(self.config_text())
        run(["haproxy", "-c", "-q", "-f", str(conf)], log=self.paths.log)
        run(["sh", "-c", f'haproxy -D -f "{conf}" >> "{self.paths.log}" 2>&1'])  # -D: it daemonizes itself

    def config_text(self) -> str:
        return config(self.region, str(self.paths.run))

    @property
    def stats_port(self) -> int:
        return self.at.haproxy_stats

    @property
    def pidfile(self) -> Path:
        return self.paths.run / "haproxy.pid"  # HAProxy writes its own

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def backends(self) -> dict[str, str]:
        """server -> UP/DOWN as HAProxy's health checks see it, e.g. {"postgres-primary/pg-1": "UP"}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=2) as r:
            rows = r.read().decode().splitlines()
        found = {}
        for line in rows[1:]:
            cols = line.split(",")
            if len(cols) > 17 and cols[1] not in ("FRONTEND", "BACKEND"):
                found[f"{cols[0]}/{cols[1]}"] = cols[17]
        return found

    def status(self) -> Status:
        pid = self.pid()
        version = tool_version(["haproxy", "-v"]).split()[2] if shutil.which("haproxy") else "?"
        return Status(self.name, f"pg 127.0.0.1:{self.at.pg_primary}, api 127.0.0.1:{self.at.api}", pid, version,
                      pid is not None and self.healthy(), f"stats http://127.0.0.1:{self.at.haproxy_stats}/")


class Front(HAProxy):
    """The one address clients use across regions, as a global load balancer or DNS failover would be:
    region A's API while its /readyz answers, region B's (a backup server) otherwise. B's API is not ready
    until B is promoted (its database is a standby), so traffic moves only to a region that can write."""

    name = "front"

    def __init__(self, settings: Settings, region: Region) -> None:
        if region.upstream is None:
            raise ValueError("the front runs beside the standby region")
        super().__init__(settings, region)
        self.paths = Paths(settings, f"{region.folder}/front")
        self.upstream = region.upstream

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.at.front, self.at.front_stats)

    @property
    def stats_port(self) -> int:
        return self.at.front_stats

    def config_text(self) -> str:
        run_dir = self.paths.run
        return _head(str(run_dir), 4000) + f"""
frontend api
    bind 127.0.0.1:{self.at.front}
    mode http
    option http-buffer-request
    timeout client 60s
    timeout http-request 15s
    default_backend regions

backend regions
    mode http
    option httpchk GET /readyz
    http-check expect status 200
    retry-on conn-failure empty-response response-timeout 503
    option redispatch 1
    timeout server 30s
    default-server inter 1s fall 2 rise 1
    server region-a 127.0.0.1:{self.upstream.api} check
    server region-b 127.0.0.1:{self.at.api} check backup

listen stats
    bind 127.0.0.1:{self.at.front_stats}
    mode http
    timeout client 10s
    timeout server 10s
    stats enable
    stats uri /
"""

    def status(self) -> Status:
        pid = self.pid()
        return Status(self.name, f"api 127.0.0.1:{self.at.front}", pid, "", pid is not None and self.healthy(),
                      "region a, else region b")
