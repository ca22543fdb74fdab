"""beanpay's own services as separate processes, as in production: started with their environment, probed
on their ops port (/readyz), killed like a crash (SIGKILL) or stopped cleanly (SIGTERM)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from beanpay.deploy.endpoint import free_port
from beanpay.services import commands

BEANPAY = str(Path(sys.executable).with_name("beanpay"))
COMMANDS = commands()


@dataclass
class Process:
    name: str  # e.g. "api-1"
    service: str
    ops_port: int
    api_port: int | None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Services:
    """`copies` processes of each service, sharing `env`; every API process gets a port of its own."""

    def __init__(self, env: dict[str, str], logs: Path, services: list[str], copies: int = 1,
                 api_ports: list[int] | None = None) -> None:
        self.env, self.logs = env, logs
        ports = iter(api_ports or [])
        self.processes = [Process(f"{s}-{i + 1}", s, free_port(),
                                  (next(ports, None) or free_port()) if s == "api" else None)
                          for s in services for i in range(copies)]

    def of(self, service: str) -> list[Process]:
        return [p for p in self.processes if p.service == service]

    def start(self, process: Process | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for p in [process] if process else self.processes:
            env = {**os.environ, **self.env, "BEANPAY_METRICS_PORT": str(p.ops_port)}
            if p.api_port is not None:
                env["BEANPAY_API_PORT"] = str(p.api_port)
            with (self.logs / f"{p.name}.log").open("ab") as out:
                p.proc = subprocess.Popen([BEANPAY, *COMMANDS[p.service]], env=env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, process: Process) -> None:
        """A crash: SIGKILL, no chance to finish anything."""
        if process.proc is not None and process.alive:
            process.proc.send_signal(signal.SIGKILL)
            process.proc.wait(timeout=10)

    def stop(self, process: Process | None = None, timeout: float = 20) -> None:
        """A clean stop (SIGTERM: requests finish, connections drain), then SIGKILL if it hangs."""
        chosen = [process] if process else self.processes
        for p in chosen:
            if p.alive and p.proc is not None:
                p.proc.terminate()
        for p in chosen:
            if p.proc is None:
                continue
            try:
                p.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait(timeout=10)

    async def ready(self, process: Process) -> bool:
        url = (f"http://127.0.0.1:{process.api_port}/readyz" if process.api_port is not None
               else f"http://127.0.0.1:{process.ops_port}/readyz")
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s, s.get(url) as r:
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def wait_ready(self, within: float = 90, processes: list[Process] | None = None) -> None:
        chosen = processes or self.processes
        deadline = asyncio.get_running_loop().time() + within
        while True:
            waiting = [p.name for p in chosen if not await self.ready(p)]
            if not waiting:
                return
            dead = [p.name for p in chosen if not p.alive]
            if dead or asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"not ready: {', '.join(waiting)}; exited: {', '.join(dead) or 'none'} "
                                   f"(logs in {self.logs})")
            await asyncio.sleep(0.5)
