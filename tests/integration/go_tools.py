"""Command-line tools the tests run, built once from their Go modules (the module proxy is what this machine
reaches) with the dev stack's own `go install` and cached next to btcd's binary, so a second run builds
nothing. `python -m tests.integration.go_tools` builds them all (`just test` does, before the tests start, so
their minutes of compiling are set-up, not test time)."""

from __future__ import annotations

from pathlib import Path

from beanpay.config import load_settings
from beanpay.deploy.devstack.ha.etcd import EtcdMember
from beanpay.deploy.devstack.ha.link import Link
from beanpay.deploy.devstack.ha.ports import region_b
from beanpay.deploy.devstack.process import go_install

HELM = ("helm.sh/helm/v3/cmd/helm@v3.22.0", "helm")
PROMTOOL = ("github.com/prometheus/prometheus/cmd/promtool@v0.316.0", "promtool")


def go_tool(module: str, name: str) -> str:
    """The path of `name`, `go install`ed from `module` (path@version) on first use."""
    cache = load_settings().state_path / "cache"
    out = cache / "go-bin" / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        go_install(module, out, cache / f"go-install-{name}.log")
    return str(Path(out))


def build_all() -> None:
    """Every Go tool the suite runs: helm and promtool, and the HA stack's etcd and toxiproxy."""
    settings = load_settings()
    for module, name in (HELM, PROMTOOL):
        print(name, go_tool(module, name))
    EtcdMember(settings, 0).install()
    Link(settings, region_b(settings)).install()
    print("etcd, toxiproxy: built")


if __name__ == "__main__":
    build_all()
