"""Two lnd nodes on regtest: the merchant's (the platform's custodial node in dev) and a customer's wallet.

lnd v0.20.0-beta is built from the Go module proxy through a small wrapper module (lnd's go.mod has
replace directives, so `go install` refuses it): lnd's own cmd/lnd/main.go, a go.mod with the same three
replace lines, `go get`, `go mod tidy`, `go build`. The binary is cached like btcd's.

Chain backend: neutrino against btcd's P2P port. lnd's btcd backend insists on TLS to btcd's RPC, and the
dev btcd serves plain HTTP to beanpay's indexer; neutrino needs nothing of btcd but its (compact-filter
serving) P2P port, so the indexer's setup stays as it is and no second btcd runs.

Wallets are created without a seed (`--noseedbackup`: regtest only). After both are up, `ensure_channel`
funds the customer's node from the miner and opens a private channel to the merchant's, so the customer
can pay; the merchant's node gets inbound liquidity from it. beanpay gets an invoice-only macaroon.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from beanpay.chains.lightning.lnd import LndClient, LndError, LndUnavailable, Permission
from beanpay.config import Settings
from beanpay.deploy.devstack import jsonrpc
from beanpay.deploy.devstack.process import StackError, run, spawn, tool_version, wait_until
from beanpay.deploy.devstack.service import Paths, PidfileProcess, Status

LND_VERSION = "v0.20.0-beta"
REPLACES = ("github.com/ulikunitz/xz => github.com/ulikunitz/xz v0.5.11",
            "github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2",
            "google.golang.org/protobuf => github.com/lightninglabs/protobuf-go-hex-display v1.33.0-hex-display")
# the RPC sub-servers of lnd's release builds that beanpay uses (invoicesrpc: cancelling invoices)
BUILD_TAGS = "signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc"
# what beanpay may do on the merchant's node: issue and watch invoices, read its identity and balances
INVOICE_PERMISSIONS = [Permission("invoices", "read"), Permission("invoices", "write"),
                       Permission("info", "read"), Permission("offchain", "read")]
# what refunds over Lightning need: decode and pay invoices (and nothing of the on-chain wallet)
PAY_PERMISSIONS = [Permission("offchain", "read"), Permission("offchain", "write"), Permission("info", "read")]
CHANNEL_SAT = 10_000_000  # 0.1 BTC from the customer to the merchant
CUSTOMER_FUNDS_SAT = 50_000_000
ROLES = {"merchant": 0, "customer": 10}
T = TypeVar("T")


def build_lnd(binary: Path, log: Path) -> None:
    if shutil.which("go") is None:
        raise StackError("go not found: install Go >= 1.25")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    with tempfile.TemporaryDirectory(prefix="lnd-build-") as tmp:
        work = Path(tmp)
        (work / "go.mod").write_text("module beanpay.local/lnd\n\ngo 1.25\n\n"
                                     + "".join(f"replace {r}\n" for r in REPLACES))
        run(["go", "get", f"github.com/lightningnetwork/lnd@{LND_VERSION}"], env=env, cwd=work, log=log)
        modcache = Path(_go_env("GOMODCACHE"))
        main = modcache / "github.com" / "lightningnetwork" / f"lnd@{LND_VERSION}" / "cmd" / "lnd" / "main.go"
        (work / "main.go").write_text(main.read_text())
        run(["go", "mod", "tidy"], env=env, cwd=work, log=log)
        run(["go", "build", "-tags", BUILD_TAGS, "-o", str(binary), "."], env=env, cwd=work, log=log)


def _go_env(name: str) -> str:
    import subprocess

    return subprocess.run(["go", "env", name], capture_output=True, text=True, check=True).stdout.strip()


class LndNode(PidfileProcess):
    marker = "lnd"

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings, self.role = settings, role
        self.name = f"lnd-{role}"
        self.paths = Paths(settings, self.name)
        base = settings.lnd_ports_base + ROLES[role]
        self.p2p_port, self.rest_port, self.rpc_port = base, base + 1, base + 2

    @property
    def binary(self) -> Path:
        return self.paths.cache / "go-bin" / f"lnd-{LND_VERSION}"

    @property
    def rest_url(self) -> str:
        return f"https://127.0.0.1:{self.rest_port}"

    @property
    def tls_cert(self) -> Path:
        return self.paths.data / "tls.cert"

    @property
    def admin_macaroon(self) -> Path:
        return self.paths.data / "data" / "chain" / "bitcoin" / "regtest" / "admin.macaroon"

    @property
    def beanpay_dir(self) -> Path:
        """What beanpay (or a test) reads to reach this node: REST URL, certificate, macaroons in hex."""
        return self.paths.data / "beanpay"

    def install(self) -> None:
        if not self.binary.exists():
            self.paths.make()
            build_lnd(self.binary, self.paths.log)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.p2p_port, self.rest_port, self.rpc_port)

    def start(self) -> None:
        self.paths.make()
        s = self.settings
        _fresh_tip(s)
        spawn([str(self.binary), f"--lnddir={self.paths.data}", "--bitcoin.regtest", "--bitcoin.node=neutrino",
               f"--neutrino.connect=127.0.0.1:{s.btcd_p2p_port}", "--noseedbackup",
               f"--listen=127.0.0.1:{self.p2p_port}", f"--restlisten=127.0.0.1:{self.rest_port}",
               f"--rpclisten=127.0.0.1:{self.rpc_port}", f"--alias=beanpay-dev-{self.role}",
               "--bitcoin.defaultchanconfs=1", "--trickledelay=50", "--tlsextradomain=localhost",
               "--debuglevel=info", "--maxpendingchannels=10"],
              log=self.paths.log, pidfile=self.paths.pidfile)
        wait_until(lambda: self.admin_macaroon.exists() and self.tls_cert.exists(), timeout=60, what=self.name,
                   log=self.paths.log)
        wait_until(self.healthy, timeout=120, what=f"{self.name} synced to chain", log=self.paths.log)
        self._write_credentials()

    def _write_credentials(self) -> None:
        self.beanpay_dir.mkdir(parents=True, exist_ok=True)
        (self.beanpay_dir / "rest_url").write_text(self.rest_url)
        shutil.copyfile(self.tls_cert, self.beanpay_dir / "tls.cert")
        admin = self.admin_macaroon.read_bytes().hex()
        _secret_file(self.beanpay_dir / "admin.macaroon.hex", admin)
        invoice = asyncio.run(_with(self.client(admin), lambda c: c.bake_macaroon(INVOICE_PERMISSIONS)))
        _secret_file(self.beanpay_dir / "invoice.macaroon.hex", invoice)
        pay = asyncio.run(_with(self.client(admin), lambda c: c.bake_macaroon(PAY_PERMISSIONS)))
        _secret_file(self.beanpay_dir / "pay.macaroon.hex", pay)

    def client(self, macaroon_hex: str | None = None) -> LndClient:
        mac = macaroon_hex or self.admin_macaroon.read_bytes().hex()
        return LndClient(self.rest_url, tls_cert_pem=self.tls_cert.read_text(), macaroon_hex=mac)

    def healthy(self) -> bool:
        if not self.admin_macaroon.exists():
            return False
        try:
            info = asyncio.run(_with(self.client(), lambda c: c.info()))
        except (LndUnavailable, LndError, OSError):
            return False
        return info.synced_to_chain

    def status(self) -> Status:
        pid = self.pid()
        version = tool_version([str(self.binary), "--version"]).partition(" version ")[2].split(" ")[0]
        healthy = pid is not None and self.healthy()
        detail = ""
        if healthy:
            balance = asyncio.run(_with(self.client(), lambda c: c.channel_balance()))
            detail = f"channels: {balance.local_balance.sat} sat local, {balance.remote_balance.sat} sat inbound"
        return Status(self.name, self.rest_url, pid, version, healthy, detail)


def _fresh_tip(settings: Settings) -> None:
    """lnd counts itself synced only once the chain's tip is recent: a new regtest chain (its genesis is from
    2011) gets a block mined first."""
    url = f"http://127.0.0.1:{settings.btcd_rpc_port}"
    auth = (settings.btcd_rpc_user, settings.btcd_rpc_password or "")
    tip = jsonrpc.call(url, "getblockheader", [jsonrpc.call(url, "getbestblockhash", auth=auth)], auth=auth)
    if time.time() - int(tip["time"]) > 3600:
        jsonrpc.call(url, "generate", [1], auth=auth)


def ensure_channel(settings: Settings) -> None:
    """Fund the customer's node and open a channel to the merchant's, unless an active one exists; then
    keep most of it on the customer's side."""
    merchant, customer = LndNode(settings, "merchant"), LndNode(settings, "customer")
    asyncio.run(_ensure_channel(settings, merchant, customer))
    rebalance(settings)


async def _ensure_channel(settings: Settings, merchant: LndNode, customer: LndNode) -> None:
    from beanpay.deploy.devstack.btc_payer import RegtestWallet

    m, c = merchant.client(), customer.client()
    wallet = RegtestWallet(settings)
    try:
        target = (await m.info()).identity_pubkey
        await c.connect_peer(target, f"127.0.0.1:{merchant.p2p_port}")
        if any(ch.get("active") and ch.get("remote_pubkey") == target for ch in await c.channels()):
            return
        if not await c.pending_channels():
            if await c.onchain_balance() < CHANNEL_SAT + 100_000:
                await wallet.ensure_funds()
                await wallet.pay(await c.new_address(), CUSTOMER_FUNDS_SAT)
                await wallet.mine(1)
                await _until(lambda: _has(c, CHANNEL_SAT + 100_000), "the customer's node to see its funds")
            # a fifth goes to the merchant's side at once: above its channel reserve, so it can pay refunds
            await c.open_channel(target, CHANNEL_SAT, push_sat=CHANNEL_SAT // 5)
        await wallet.mine(3)
        await _until(lambda: _active(c, target), "the channel to become active")
    finally:
        await wallet.close()
        await m.close()
        await c.close()


def rebalance(settings: Settings) -> None:
    """Move what the merchant's node received back to the customer's side of the channel (the merchant pays
    the customer), so the customer can keep paying however many tests and benches ran before."""
    asyncio.run(_rebalance(LndNode(settings, "merchant").client(), LndNode(settings, "customer").client()))


async def _rebalance(m: LndClient, c: LndClient) -> None:
    try:
        local = (await c.channel_balance()).local_balance.sat
        want = CHANNEL_SAT * 8 // 10 - local
        if want <= 0:
            return
        while want > 0:  # in parts: one HTLC may carry at most about 4.29M sat
            part = min(want, 4_000_000)
            bill = await c.add_invoice(value_msat=part * 1000, description_hash=os.urandom(32), expiry_seconds=600)
            for attempt in range(20):  # a channel just active on one side may not be on the other's yet
                try:
                    await m.pay(bill.payment_request, fee_limit_sat=0)
                    break
                except LndError:
                    if attempt == 19:
                        raise
                    await asyncio.sleep(1.0)
            want -= part
    finally:
        await m.close()
        await c.close()


async def _has(c: LndClient, amount: int) -> bool:
    return await c.onchain_balance() >= amount


async def _active(c: LndClient, target: str) -> bool:
    return any(ch.get("active") and ch.get("remote_pubkey") == target for ch in await c.channels())


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise StackError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)


async def _with(client: LndClient, call: Callable[[LndClient], Awaitable[T]]) -> T:
    try:
        return await call(client)
    finally:
        await client.close()


def _secret_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
