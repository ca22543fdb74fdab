"""The Helm chart, checked without a cluster: `helm lint` and `helm template` (helm built from its Go module
and cached like btcd), every rendered built-in object validated against Kubernetes' own schemas offline
(kubernetes-validate), and the rules a reviewer would check by hand: every workload has probes, resources
and a disruption budget, no secret value lands in a ConfigMap or a pod spec, every setting the chart sets
is one beanpay knows, and the operators' objects (CloudNativePG, Strimzi, Prometheus) say what the design asks."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from beanpay.config import Settings
from beanpay.events.catalog import ALL_TOPICS
from tests.integration.go_tools import HELM, go_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "beanpay"
KUBERNETES = "1.31.0"
# the operators' kinds: checked by hand below
CUSTOM = {"Cluster", "Kafka", "KafkaNodePool", "KafkaMirrorMaker2", "ServiceMonitor", "PrometheusRule"}
SECRET_LOOKING = re.compile(r"PASSWORD|SECRET|PRIVATE_KEY|TOKEN|WALLETS|SWEEPER_KEY|MACAROON|CREDENTIALS_KEY")
SECRET_VALUES = {"JWT_SECRET": "jwt-9f2c4e1d7a", "SMTP_PASSWORD": "smtp-5b8e2a", "VAPID_PRIVATE_KEY": "vapid-3c7d1f"}


@pytest.fixture(scope="module")
def helm() -> str:
    return go_tool(*HELM)


def render(helm: str, *values: str, sets: dict[str, str] | None = None) -> list[dict[str, Any]]:
    args = [helm, "template", "beanpay", str(CHART), "--namespace", "payments", "--kube-version", KUBERNETES]
    for v in values:
        args += ["-f", str(CHART / v)]
    for key, value in (sets or {}).items():
        args += ["--set-string", f"{key}={value}"]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("values", [(), ("values-region-b.yaml",)], ids=["region-a", "region-b"])
def test_the_chart_lints_renders_and_validates(helm: str, values: tuple[str, ...]) -> None:
    files = [a for v in values for a in ("-f", str(CHART / v))]
    lint = subprocess.run([helm, "lint", "--strict", "--kube-version", KUBERNETES, str(CHART), *files],
                          capture_output=True, text=True, timeout=120, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = render(helm, *values)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap", "Secret", "NetworkPolicy",
            "ServiceMonitor", "PrometheusRule", "Cluster", "Kafka", "KafkaNodePool", "StatefulSet", "Service",
            "Ingress"} <= kinds
    for doc in docs:
        if doc["kind"] not in CUSTOM:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises naming the field at fault

    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in of(docs, "Deployment")}
    assert set(deployments) == {"api", "engine", "indexer", "relay", "webhooks", "notify", "lightning"}
    budgets = of(docs, "PodDisruptionBudget")
    for workload in [*of(docs, "Deployment"), *of(docs, "StatefulSet")]:
        pod = workload["spec"]["template"]
        for c in pod["spec"]["containers"]:
            where = f"{workload['metadata']['name']}/{c['name']}"
            assert c.get("readinessProbe") and c.get("livenessProbe"), f"{where} has no probes"
            assert c["resources"].get("requests") and c["resources"].get("limits"), f"{where} has no resources"
        assert any(matches(b["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]) for b in budgets), \
            f"no PodDisruptionBudget covers {workload['metadata']['name']}"
    (hpa,) = of(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployments["api"]["metadata"]["name"]
    assert "replicas" not in deployments["api"]["spec"]  # the autoscaler owns the API's replica count
    for d in deployments.values():
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0  # a new pod is ready first

    known = {f"BEANPAY_{f.upper()}" for f in Settings.__struct_fields__}
    for cm in of(docs, "ConfigMap"):
        for key in cm.get("data", {}):
            if key.startswith("BEANPAY_"):
                assert key in known, f"{key} is not a beanpay setting (start-up refuses unknown ones)"
                assert not SECRET_LOOKING.search(key.removeprefix("BEANPAY_")), f"{key} belongs in the Secret"

    (rules,) = of(docs, "PrometheusRule")  # the rules promtool checks, as the operator receives them
    assert rules["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    (dashboard,) = [c for c in of(docs, "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert json.loads(dashboard["data"]["beanpay.json"])["uid"] == "beanpay-overview"

    (pg,) = of(docs, "Cluster")
    assert pg["apiVersion"] == "postgresql.cnpg.io/v1" and pg["spec"]["instances"] == 3
    assert pg["spec"]["postgresql"]["synchronous"] == {"method": "any", "number": 1}
    (kafka,) = of(docs, "Kafka")
    (pool,) = of(docs, "KafkaNodePool")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert (pool["spec"]["replicas"], sorted(pool["spec"]["roles"])) == (3, ["broker", "controller"])
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 3
    (config,) = [c for c in of(docs, "ConfigMap") if c["metadata"]["name"].endswith("-config")]
    assert config["data"]["BEANPAY_REDIS_URL"].startswith("redis+sentinel://")  # beanpay follows a failover
    assert config["data"]["BEANPAY_REDIS_URL"].count(":26379") == 3
    (redis,) = [s for s in of(docs, "StatefulSet") if s["metadata"]["name"].endswith("-redis")]
    assert {c["name"] for c in redis["spec"]["template"]["spec"]["containers"]} == {"redis", "sentinel"}
    if values:  # the second region follows the first's database, read-only until promoted
        assert pg["spec"]["replica"] == {"enabled": True, "source": "beanpay-a"}
        assert "pg_basebackup" in pg["spec"]["bootstrap"]
        (mirror,) = of(docs, "KafkaMirrorMaker2")  # and its Kafka receives the first's topics, names kept
        (flow,) = mirror["spec"]["mirrors"]
        assert (flow["sourceCluster"], flow["targetCluster"]) == ("a", "b")
        assert flow["topicsPattern"] == "|".join(ALL_TOPICS)
        assert flow["sourceConnector"]["config"]["replication.policy.class"].endswith("IdentityReplicationPolicy")
    else:
        assert "replica" not in pg["spec"] and "initdb" in pg["spec"]["bootstrap"]
        assert not of(docs, "KafkaMirrorMaker2")


def test_secret_values_stay_in_the_secret(helm: str) -> None:
    docs = render(helm, sets={f"secrets.values.{k}": v for k, v in SECRET_VALUES.items()})
    (secret,) = of(docs, "Secret")
    assert {secret["stringData"][f"BEANPAY_{k}"] for k in SECRET_VALUES} == set(SECRET_VALUES.values())
    elsewhere = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    for value in SECRET_VALUES.values():
        assert value not in elsewhere, "a secret value is outside the Secret"
    # pods read them from the Secret by reference only
    for d in of(docs, "Deployment"):
        (c,) = d["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in c["envFrom"]
    named = render(helm, sets={"secrets.existingSecret": "vault-synced"})
    assert not of(named, "Secret")
    assert all({"secretRef": {"name": "vault-synced"}} in d["spec"]["template"]["spec"]["containers"][0]["envFrom"]
               for d in of(named, "Deployment"))
