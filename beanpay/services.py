"""The services beanpay runs, declared once: the name processes, logs, traces and the dev stack know each by,
and the `beanpay` command that runs it alone. `beanpay run` runs them all in one process (beanpay.cli.runner);
the dev stack, the drills, the benches and the tests spawn the ones they need from this table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    argv: tuple[str, ...]  # `beanpay <argv>` runs it alone
    does: str


def indexer(chain: str) -> Service:
    return Service(f"index-{chain}", ("index", "--chain", chain), f"follows the {chain} chain and indexes deposits")


SERVICES: tuple[Service, ...] = (
    Service("api", ("api",), "serves the HTTP API and the pages"),
    Service("relay", ("relay",), "publishes outbox events to Kafka"),
    Service("engine", ("engine",), "settles payments, expires orders and claims, refreshes rates, sends refunds"),
    Service("webhooks", ("webhooks", "serve"), "fans events out into merchant webhooks and delivers them"),
    Service("notify", ("notify",), "tells customers about their orders"),
    Service("lightning", ("lightning",), "follows Lightning nodes: settles paid invoices, pays refunds"),
    indexer("eth"),
    indexer("btc"),
)
BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}


def commands(*names: str) -> dict[str, list[str]]:
    """name -> the `beanpay` arguments that run it, for those named (all when none are)."""
    return {name: list(BY_NAME[name].argv) for name in (names or tuple(BY_NAME))}
