"""The deployment files are valid and agree with the code: Kubernetes manifests against the Kubernetes
schemas (``kubernetes-validate``, offline, strict), ``docker-compose.yml`` against the Compose
Specification's JSON schema (the copy ``check-jsonschema`` vendors from compose-spec/compose-spec), the
HAProxy example; and the settings they set are settings cachegate knows, with values it accepts."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from proxy.settings import SPECS, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.32.0"  # preStop's sleep action is GA since 1.30
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


@pytest.mark.parametrize("doc", [d for d in documents() if (d["apiVersion"], d["kind"]) not in CRDS],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_service_monitor_scrapes_the_proxy_service() -> None:
    monitor, service = find("ServiceMonitor", "cachegate-proxy"), find("Service", "cachegate-proxy")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics/prometheus"


@pytest.mark.parametrize("name", ["cachegate-proxy", "cachegate-embedding"])
def test_each_deployment_has_its_service_budget_and_autoscaler(name: str) -> None:
    deployment = find("Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert deployment["spec"]["replicas"] >= 2
    for kind in ("Service", "PodDisruptionBudget"):
        selector = find(kind, name)["spec"]["selector"]
        assert selector.get("matchLabels", selector).items() <= labels.items(), kind
    autoscaler = find("HorizontalPodAutoscaler", name)["spec"]
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert autoscaler["minReplicas"] == deployment["spec"]["replicas"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0


def test_the_proxy_is_ready_by_its_readiness_and_drains_within_its_grace_period() -> None:
    pod = find("Deployment", "cachegate-proxy")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"  # never a dependency's health
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    settings = Settings.from_env(find("ConfigMap", "cachegate-proxy")["data"])
    assert settings.drain_seconds >= settings.upstream_timeout  # the longest stream finishes
    budget = container["lifecycle"]["preStop"]["sleep"]["seconds"] + settings.drain_delay + settings.drain_seconds
    assert pod["terminationGracePeriodSeconds"] > budget


def test_the_proxy_config_sets_only_known_settings_to_accepted_values() -> None:
    data = find("ConfigMap", "cachegate-proxy")["data"]
    assert set(data) <= {spec.env for spec in SPECS}
    settings = Settings.from_env(data)  # raises naming the setting if a value is refused
    assert settings.redis_url is not None and settings.redis_url.startswith("redis+cluster://")
    assert settings.qdrant_replication_factor == 2


def test_redis_cluster_and_qdrant_come_from_their_charts_with_replication() -> None:
    redis = yaml.safe_load((DEPLOY / "helm" / "redis-cluster-values.yaml").read_text())
    assert redis["cluster"]["replicas"] >= 1
    assert "cluster-require-full-coverage no" in redis["redis"]["configmap"]
    qdrant = yaml.safe_load((DEPLOY / "helm" / "qdrant-values.yaml").read_text())
    assert qdrant["replicaCount"] == 3 and qdrant["config"]["cluster"]["enabled"] is True


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text())
    return schema


@pytest.mark.parametrize("path", ["docker-compose.yml", "deploy/docker-compose.monitoring.yml"])
def test_compose_files_follow_the_compose_specification(path: str) -> None:
    document = yaml.safe_load((ROOT / path).read_text())
    jsonschema.Draft202012Validator(compose_schema()).validate(document)


def test_the_compose_proxy_is_checked_by_readiness_and_drains() -> None:
    proxy = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["proxy"]
    assert "/health/ready" in " ".join(proxy["healthcheck"]["test"])
    assert proxy["stop_signal"] == "SIGTERM"
    environment = {k: str(v) for k, v in proxy["environment"].items() if "${" not in str(v)}
    settings = Settings.from_env(environment)
    assert float(proxy["stop_grace_period"].rstrip("s")) > settings.drain_delay + settings.drain_seconds


def test_the_haproxy_example_checks_readiness_and_balances_round_robin() -> None:
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert "balance roundrobin" in config
    assert "option httpchk GET /health/ready" in config
