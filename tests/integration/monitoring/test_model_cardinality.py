"""Issue 10.17: model names a client makes up (the upstream answers them 404) are not priced, warned about,
given Prometheus labels or ledger rows of their own, and every model name reaches the request log escaped."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.monitoring.helpers import wait_for
from tests.support.proxy import ProxyServer


def ask(proxy: ProxyServer, model: str, status: str | None = None) -> httpx.Response:
    headers = {"authorization": "Bearer sk-test-alice", **({"x-sim-status": status} if status else {})}
    return httpx.post(proxy.base_url + "/chat/completions", headers=headers, timeout=10,
                      json={"model": model, "messages": [{"role": "user", "content": f"about {model}"}]})


def test_made_up_models_that_fail_are_not_priced_labelled_or_listed(start_proxy: Any,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    proxy = start_proxy()
    with caplog.at_level(logging.WARNING, logger="cachegate.pricing"):
        for i in range(20):
            assert ask(proxy, f"made-up-{i}", status="404").status_code == 404
        assert ask(proxy, "gpt-4o-mini").status_code == 200
        assert ask(proxy, "unpriced-but-real").status_code == 200
    metrics = httpx.get(proxy.url + "/metrics").json()
    models = {row["model"] for row in metrics["by_model"]}
    assert models == {"gpt-4o-mini", "unpriced-but-real", "other"}  # the 20 failures share one row
    assert next(row for row in metrics["by_model"] if row["model"] == "other")["requests"] == 20
    assert metrics["pricing"]["fallback_models"] == ["unpriced-but-real"]
    warned = [r.getMessage() for r in caplog.records if r.name == "cachegate.pricing"]
    assert len(warned) == 1 and "unpriced-but-real" in warned[0]
    prometheus = httpx.get(proxy.url + "/metrics/prometheus").text
    assert "made-up-" not in prometheus


def test_model_names_are_escaped_in_the_request_log(start_proxy: Any, tmp_path: Path) -> None:
    proxy = start_proxy()
    for model in ("gpt-4o-mini", "back\\slash", "caf\u00e9"):
        assert ask(proxy, model).status_code == 200
    path = tmp_path / "requests.log"
    logged = wait_for(lambda: path.read_text().splitlines() if path.exists() else [], lambda found: len(found) >= 3)
    assert len(logged) == 3
    assert [line.split(" | ")[2].strip() for line in logged] == ["gpt-4o-mini", "back\\\\slash", "caf\u00e9"]
