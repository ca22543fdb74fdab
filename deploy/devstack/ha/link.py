"""The network between two regions on one machine: toxiproxy (built from its Go module) relays the standby
region's connections to the active one (PostgreSQL streaming, MirrorMaker 2's reads of Kafka) and adds
latency each way, as a link between real regions has. This kernel has no `tc netem`, hence a proxy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from beanpay.config import Settings
from beanpay.deploy.devstack.ha.ports import MEMBERS, Region
from beanpay.deploy.devstack.process import go_install, port_open, spawn, wait_until
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status

TOXIPROXY = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0"
ONE_WAY_MS = 20  # each direction: 40 ms round trip between the regions


class Link(PidfileProcess):
    name = "link"

    def __init__(self, settings: Settings, region: Region, one_way_ms: int = ONE_WAY_MS) -> None:
        if region.upstream is None:
            raise ValueError("a link runs beside a standby region")
        self.settings, self.region, self.one_way_ms = settings, region, one_way_ms
        self.paths = Paths(settings, f"{region.folder}/link")
        self.at, self.upstream = region.at, region.upstream
        self.marker = str(self.binary)

    @property
    def binary(self) -> Path:
        return self.paths.cache / "go-bin" / "toxiproxy-v2.5.0"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.at.link_api}"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.at.link_api, self.at.link_pg, *(self.at.link_kafka(i) for i in range(MEMBERS)))

    def proxies(self) -> dict[str, tuple[int, int]]:
        """name -> (listen port here, the active region's port it leads to)."""
        found = {"postgres": (self.at.link_pg, self.upstream.pg_primary)}
        for i in range(MEMBERS):
            found[f"kafka-{i + 1}"] = (self.at.link_kafka(i), self.upstream.kafka_remote(i))
        return found

    def install(self) -> None:
        if self.binary.exists():
            return
        self.paths.make()
        go_install(TOXIPROXY, self.binary, self.paths.log)

    def start(self) -> None:
        self.paths.make()
        spawn([str(self.binary), "-host", "127.0.0.1", "-port", str(self.at.link_api)],
              log=self.paths.log, pidfile=self.paths.pidfile)
        wait_until(lambda: port_open(self.at.link_api), timeout=20, what="toxiproxy's API", log=self.paths.log)
        body = [{"name": name, "listen": f"127.0.0.1:{here}", "upstream": f"127.0.0.1:{there}", "enabled": True}
                for name, (here, there) in self.proxies().items()]
        self._call("POST", "/populate", body)  # toxiproxy keeps its proxies in memory: set after each start

    def add_latency(self) -> None:
        """Latency on both streams of every proxy, added once the standby region holds its copy: the drill
        measures the steady state, and the initial copy is seeded as fast as the machine allows."""
        for name in self.proxies():
            existing = {t["name"] for t in self._call("GET", f"/proxies/{name}/toxics")}
            for stream in ("upstream", "downstream"):
                if f"latency-{stream}" not in existing:
                    self._call("POST", f"/proxies/{name}/toxics", {
                        "name": f"latency-{stream}", "type": "latency", "stream": stream, "toxicity": 1.0,
                        "attributes": {"latency": self.one_way_ms, "jitter": 0}})

    def _call(self, method: str, path: str, body: object = None) -> list[dict[str, object]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method,  # noqa: S310 - loopback
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 - loopback
            found = json.loads(r.read() or b"[]")
        return list(found.get("proxies", [])) if isinstance(found, dict) and "proxies" in found else \
            (found if isinstance(found, list) else [])

    def latency(self) -> dict[str, int]:
        """proxy -> the latency it adds one way (ms); empty when the link is not up."""
        try:
            with urllib.request.urlopen(self.api + "/proxies", timeout=2) as r:  # noqa: S310 - loopback
                proxies = json.loads(r.read())
        except (OSError, ValueError, urllib.error.URLError):
            return {}
        return {name: min((int(t["attributes"]["latency"]) for t in p.get("toxics", [])), default=0)
                for name, p in proxies.items() if p.get("enabled")}

    def healthy(self) -> bool:
        return set(self.latency()) == set(self.proxies())

    def status(self) -> Status:
        pid = self.pid()
        one_way = max(self.latency().values(), default=0)
        return Status(self.name, self.api, pid, "toxiproxy 2.5.0", pid is not None and self.healthy(),
                      f"{2 * one_way} ms round trip to the active region")
