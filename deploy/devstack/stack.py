"""Bring the local stack up or down, idempotently, and report its state."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence

from beanpay.config import Settings
from beanpay.deploy.devstack import SERVICE_NAMES
from beanpay.deploy.devstack.anvil import Anvil
from beanpay.deploy.devstack.btcd import Btcd
from beanpay.deploy.devstack.kafka import Kafka
from beanpay.deploy.devstack.lnd import LndNode, ensure_channel
from beanpay.deploy.devstack.postgres import Postgres
from beanpay.deploy.devstack.process import StackError, port_open
from beanpay.deploy.devstack.redis import Redis
from beanpay.deploy.devstack.service import Service, Status


def services(settings: Settings, names: Sequence[str] = ()) -> list[Service]:
    unknown = set(names) - set(SERVICE_NAMES)
    if unknown:
        raise StackError(f"unknown service(s) {', '.join(sorted(unknown))}; choose from {', '.join(SERVICE_NAMES)}")
    every: list[Service] = [Postgres(settings), Redis(settings), Kafka(settings), Anvil(settings), Btcd(settings),
                            LndNode(settings, "merchant"), LndNode(settings, "customer")]
    return [s for s in every if not names or s.name in names]


def up(settings: Settings, names: Sequence[str] = ()) -> None:
    """Install what is missing, start what is down, restart what crashed; leave healthy ones alone."""
    _forget_lightning_of_a_lost_chain(settings)
    for svc in services(settings, names):
        svc.install()
        pid = svc.pid()
        if pid is not None and svc.healthy():
            _say(f"{svc.name:12} already running (pid {pid})")
            continue
        if pid is not None:
            _say(f"{svc.name:12} running but unhealthy (pid {pid}); restarting")
            svc.stop()
        busy = [p for p in svc.ports if port_open(p)]
        if busy:
            raise StackError(f"{svc.name}: port {busy[0]} is in use by another process; stop it or set "
                             f"BEANPAY_*_PORT to free ports")
        svc.start()
        _say(f"{svc.name:12} started (pid {svc.pid()})")
    chosen = {s.name for s in services(settings, names)}
    if {"lnd-merchant", "lnd-customer"} <= chosen:
        ensure_channel(settings)  # the customer can pay the merchant over Lightning
        _say("lightning channel customer -> merchant active")


def _forget_lightning_of_a_lost_chain(settings: Settings) -> None:
    """btcd deletes its regtest chain whenever it starts ("Removing regression test database"), so a btcd that
    is down starts a new chain; the Lightning nodes' wallets, funded and with a channel on the old one, would wait
    for it for ever. They are stopped and their data removed, to be made again (wallets, funds, channel)."""
    btcd = Btcd(settings)
    if btcd.pid() is not None or not (btcd.paths.data / "regtest").exists():
        return
    for role in ("merchant", "customer"):
        node = LndNode(settings, role)
        if node.paths.data.exists():
            node.stop()
            shutil.rmtree(node.paths.data)
            _say(f"{node.name:12} reset: btcd starts a new regtest chain, and the node's wallet was on the old one")


def down(settings: Settings, names: Sequence[str] = ()) -> None:
    for svc in reversed(services(settings, names)):
        if svc.pid() is None:
            _say(f"{svc.name:12} not running")
            continue
        svc.stop()
        _say(f"{svc.name:12} stopped")


def status(settings: Settings, names: Sequence[str] = ()) -> list[Status]:
    return [svc.status() for svc in services(settings, names)]


def format_status(rows: list[Status]) -> str:
    lines = [f"{'SERVICE':12} {'HEALTH':9} {'PID':>7}  {'VERSION':20} ADDRESS"]
    for r in rows:
        health = "healthy" if r.healthy else ("unhealthy" if r.pid else "down")
        detail = f"  ({r.detail})" if r.detail else ""
        lines.append(f"{r.name:12} {health:9} {r.pid or '-':>7}  {r.version[:20]:20} {r.address}{detail}")
    return "\n".join(lines)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
