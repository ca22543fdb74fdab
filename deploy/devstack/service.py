"""What every local service offers the stack runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from beanpay.config import Settings
from beanpay.deploy.devstack.process import read_pid, stop_pid


@dataclass(frozen=True)
class Status:
    name: str
    address: str
    pid: int | None
    version: str
    healthy: bool
    detail: str = ""


class Service(Protocol):
    name: str

    @property
    def ports(self) -> tuple[int, ...]:
        """Loopback ports the service listens on."""

    def install(self) -> None:
        """Fetch or build what the service needs; a no-op when already cached."""

    def start(self) -> None:
        """Start the process (it is known not to be running) and wait until healthy."""

    def stop(self) -> None: ...

    def pid(self) -> int | None: ...

    def healthy(self) -> bool: ...

    def status(self) -> Status: ...


@dataclass
class Paths:
    """Per-service folders under the state dir: data, logs, run (pid files), and a shared cache."""

    settings: Settings
    name: str

    @property
    def root(self) -> Path:
        return self.settings.state_path

    @property
    def data(self) -> Path:
        return self.root / self.name / "data"

    @property
    def run(self) -> Path:
        return self.root / self.name / "run"

    @property
    def log(self) -> Path:
        return self.root / "logs" / f"{self.name}.log"

    @property
    def pidfile(self) -> Path:
        return self.run / f"{Path(self.name).name}.pid"  # a name may be nested: "ha/etcd-1"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def make(self) -> None:
        for d in (self.data, self.run, self.log.parent, self.cache):
            d.mkdir(parents=True, exist_ok=True)


class PidfileProcess:
    """`pid()` and `stop()` for a service whose process writes a pid file: the file is believed only while the
    process's command line holds `marker` (a pid may have been reused), and a stop waits `stop_timeout`."""

    paths: Paths
    marker: str
    stop_timeout: ClassVar[float] = 30.0

    @property
    def pidfile(self) -> Path:
        return self.paths.pidfile

    def pid(self) -> int | None:
        return read_pid(self.pidfile, self.marker)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid, timeout=self.stop_timeout)


class NamedProcess(PidfileProcess):
    """A service of the plain stack: one process, its folders named after it."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = Paths(settings, self.name)
