"""btcd on regtest, built from the Go module proxy; blocks are mined to a dev key the stack owns."""

from __future__ import annotations

import os
from pathlib import Path

from beanpay.deploy.devstack import jsonrpc, wallet
from beanpay.deploy.devstack.process import go_install, spawn, tool_version, wait_until
from beanpay.deploy.devstack.service import NamedProcess, Status

BTCD_MODULE = "github.com/btcsuite/btcd@v0.26.0"


def mining_key(state_dir: Path) -> tuple[str, str]:
    """(WIF, bcrt1q address) of the regtest miner: a dev-only key kept in the state folder."""
    from bitcoinlib.keys import Key  # heavy import, only needed here

    path = state_dir / "secrets" / "btc_mining_wif"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(str(Key(network="regtest").wif()))
    key = Key(path.read_text().strip(), network="regtest")
    return str(key.wif()), str(key.address(encoding="bech32", script_type="p2wpkh"))


class Btcd(NamedProcess):
    name = "btcd"
    marker = "btcd"

    @property
    def binary(self) -> Path:
        return self.paths.cache / "go-bin" / "btcd"

    def install(self) -> None:
        if self.binary.exists():
            return
        self.paths.make()
        go_install(BTCD_MODULE, self.binary, self.paths.log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.btcd_rpc_port}"

    @property
    def auth(self) -> tuple[str, str]:
        return self.settings.btcd_rpc_user, self.settings.btcd_rpc_password or ""

    def start(self) -> None:
        self.paths.make()
        _, address = mining_key(self.settings.state_path)
        wallet.account_key(self.settings.state_path)  # the dev merchant wallet; the server reads only its xpub
        home = self.paths.run / "home"  # btcd always creates ~/.btcd
        home.mkdir(exist_ok=True)
        s = self.settings
        spawn([str(self.binary), "--regtest", f"--datadir={self.paths.data}",
               f"--logdir={self.paths.run / 'logs'}", f"--rpcuser={s.btcd_rpc_user}",
               f"--rpcpass={s.btcd_rpc_password}", f"--rpclisten=127.0.0.1:{s.btcd_rpc_port}",
               f"--listen=127.0.0.1:{s.btcd_p2p_port}", "--notls", "--txindex",
               f"--miningaddr={address}", "--rpcmaxclients=100"],
              log=self.paths.log, pidfile=self.paths.pidfile, env={**os.environ, "HOME": str(home)})
        wait_until(self.healthy, timeout=30, what="btcd", log=self.paths.log)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.btcd_rpc_port, self.settings.btcd_p2p_port)

    def healthy(self) -> bool:
        try:
            return int(jsonrpc.call(self.url, "getblockcount", auth=self.auth)) >= 0
        except (OSError, RuntimeError, ValueError):
            return False

    def status(self) -> Status:
        pid = self.pid()
        version = tool_version([str(self.binary), "--version"]).removeprefix("btcd version ")
        return Status(self.name, self.url, pid, version, pid is not None and self.healthy())
