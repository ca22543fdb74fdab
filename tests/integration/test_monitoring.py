"""The alert rules and the Grafana dashboard, checked with promtool (built from Prometheus' Go module):
the rules load, each alert fires on the series it is for and stays quiet on healthy ones (promtool's own
rule tests), every dashboard query is valid PromQL, and every beanpay metric they name is one a beanpay
process exports."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.integration.go_tools import PROMTOOL, go_tool

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "deploy" / "helm" / "beanpay" / "files"
ALERTS, DASHBOARD = FILES / "alerts.yaml", FILES / "dashboard.json"
# every module that registers metrics, as the service processes import them
METRIC_MODULES = ["beanpay.api.metrics", "beanpay.api.feed", "beanpay.api.ratelimit", "beanpay.events.relay",
                  "beanpay.engine.worker", "beanpay.engine.wallets", "beanpay.engine.webhooks.sender",
                  "beanpay.engine.notifications.sender", "beanpay.engine.lightning.watcher",
                  "beanpay.indexer.follower", "beanpay.gc_tuning"]
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",), "summary": ("",)}


@pytest.fixture(scope="module")
def promtool() -> str:
    return go_tool(*PROMTOOL)


def run(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def exported() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = {"up"}
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(beanpay_[a-z0-9_]+|up)\b(?=\s*[{\[)])", expr))


@pytest.mark.timeout(1800)
def test_the_alert_rules_load_and_fire_when_they_should(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "check", "rules", str(ALERTS))
    run(promtool, "test", "rules", str(ROOT / "tests" / "monitoring" / "alerts_test.yaml"))
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    # what the operations story asks to be watched
    assert {"BeanpayIndexerLagging", "BeanpayIndexerStalled", "BeanpayOutboxBacklog", "BeanpayEngineQueueBacklog",
            "BeanpayWebhookFailures", "BeanpayWebhooksOverdue", "BeanpayApiErrorRate",
            "BeanpayApiLatencyP99"} <= names
    assert all(r["labels"]["severity"] in {"page", "ticket"} and r["annotations"]["summary"] for r in rules)
    tested = yaml.safe_load((ROOT / "tests" / "monitoring" / "alerts_test.yaml").read_text())
    fired = {a["alertname"] for t in tested["tests"] for a in t["alert_rule_test"] if a["exp_alerts"]}
    untested = names - fired - {"BeanpayIndexerHalted", "BeanpayLightningNodeDown", "BeanpayOutboxPublishFailing",
                                "BeanpayEngineSettlementFailing", "BeanpayWebhooksOverdue",
                                "BeanpayEngineQueueBacklog"}  # one gauge or counter over a threshold each
    assert not untested, f"alerts without a firing test: {untested}"


def test_the_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    # Grafana's variables, replaced by what they stand for, then checked as recording rules
    rules: dict[str, Any] = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": expr.replace("$__rate_interval", "1m").replace("$job", ".*")}
        for i, (_, expr) in enumerate(queries)]}]}
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    run(promtool, "check", "rules", str(path))


def test_every_metric_watched_is_exported() -> None:
    known = exported()
    alerts = [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    for where, expr in [*(("alerts", e) for e in alerts), *dashboard_queries()]:
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        missing = names - known
        assert not missing, f"{where} watches {missing}, which no beanpay process exports"
