"""deploy/prometheus/alerts.yml: valid for promtool, every rule unit-tested (alerts.test.yml), each with a
runbook, and every metric it watches exported by cachegate."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from proxy.app import build
from proxy.settings import Settings
from tests.support.prometheus import RULES, require

TESTS = RULES.with_name("alerts.test.yml")
#: the prompt-cache probe's monitor exports these when it runs (proxy/probe), not every app
PROBE = "cachegate_probe_"


def rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run([require("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_every_rule_pass() -> None:
    result = subprocess.run([require("promtool"), "test", "rules", str(TESTS)], capture_output=True, text=True,
                            check=False, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {test["alertname"] for case in yaml.safe_load(TESTS.read_text())["tests"]
              for test in case["alert_rule_test"] if any(test["exp_alerts"])}
    assert tested == {rule["alert"] for rule in rules()}  # every rule fires in at least one case


def test_every_rule_has_a_runbook_and_a_severity() -> None:
    names = {rule["alert"] for rule in rules()}
    assert names == {"CachegateHitRateLow", "CachegateEvictionsHigh", "CachegateStoreNearlyFull",
                     "CachegateUpstreamErrorRateHigh", "CachegateDependencyDown", "CachegateFailOpenRising",
                     "CachegateSemanticFalseHitsRising", "CachegateModelStoppedCaching"}
    for rule in rules():
        assert rule["annotations"]["runbook"].strip(), rule["alert"]  # type: ignore[index]
        assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]


def test_every_metric_the_rules_watch_is_exported(tmp_path: Path) -> None:
    parts = build(Settings(data_dir=str(tmp_path)))
    text = generate_latest(parts.telemetry.metrics.registry).decode()
    exported = set(re.findall(r"^# HELP (cachegate_\w+)", text, re.M))
    watched = {name for rule in rules() for name in re.findall(r"cachegate_\w+", str(rule["expr"]))}
    watched = {re.sub(r"_(count|bucket|sum)$", "", name) for name in watched if not name.startswith(PROBE)}
    assert watched <= exported, watched - exported
