"""anvil, the EVM dev node, from its pinned npm package (the binary ships inside the tarball)."""

from __future__ import annotations

import shutil
from pathlib import Path

from beanpay.deploy.devstack import evm_contracts, jsonrpc
from beanpay.deploy.devstack.process import StackError, run, spawn, tool_version, wait_until
from beanpay.deploy.devstack.service import NamedProcess, Status

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "anvil"
CHAIN_ID = 31337


class Anvil(NamedProcess):
    name = "anvil"
    marker = "anvil"

    @property
    def npm_dir(self) -> Path:
        return self.paths.cache / "npm"

    @property
    def binary(self) -> Path:
        return self.npm_dir / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"

    def install(self) -> None:
        lock = (PACKAGE_DIR / "package-lock.json").read_bytes()
        stamp = self.npm_dir / "package-lock.json"
        if self.binary.exists() and stamp.exists() and stamp.read_bytes() == lock:
            return
        if shutil.which("npm") is None:
            raise StackError("npm not found: install Node.js with npm")
        self.npm_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE_DIR / "package.json", self.npm_dir)
        shutil.copy(PACKAGE_DIR / "package-lock.json", self.npm_dir)
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=self.npm_dir, log=self.paths.log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.anvil_port}"

    def start(self) -> None:
        self.paths.make()
        spawn([str(self.binary), "--host", "127.0.0.1", "--port", str(self.settings.anvil_port),
               "--chain-id", str(CHAIN_ID), "--steps-tracing"],
              log=self.paths.log, pidfile=self.paths.pidfile)
        wait_until(self.healthy, timeout=30, what="anvil", log=self.paths.log)
        evm_contracts.deploy(self.url, CHAIN_ID, self.settings.state_path)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.anvil_port,)

    def healthy(self) -> bool:
        try:
            return int(jsonrpc.call(self.url, "eth_chainId"), 16) == CHAIN_ID
        except (OSError, RuntimeError, ValueError):
            return False

    def status(self) -> Status:
        pid = self.pid()
        version = tool_version([str(self.binary), "--version"]).removeprefix("anvil Version: ")
        return Status(self.name, self.url, pid, version, pid is not None and self.healthy())
