"""METRICS_BIND_ADDRESS through a real ``cachegate serve`` process: the monitoring routes on the second
listener only, the proxied API on the public one only, and a scrape's bearer or basic auth with
MONITOR_API_KEY."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import SimulatorServer, SubprocessServer, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(sim: SimulatorServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    public, metrics = free_port(), free_port()
    env = {"UPSTREAM_BASE_URL": sim.base_url, "DATA_DIR": str(tmp_path), "SEMANTIC_MODE": "off",
           "LOG_PATH": str(tmp_path / "requests.log"), "MONITOR_API_KEY": "mon", "PORT": str(public),
           "METRICS_BIND_ADDRESS": f"127.0.0.1:{metrics}", "PYTHONPATH": str(ROOT)}
    with SubprocessServer([sys.executable, "-m", "proxy.cli", "serve"], port=metrics, env=env, cwd=str(ROOT)):
        yield f"http://127.0.0.1:{public}", f"http://127.0.0.1:{metrics}"


def test_monitoring_on_its_own_listener_only(served: tuple[str, str]) -> None:
    public, metrics = served
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(public + "/v1/chat/completions", json=body).headers["x-cache"] == "MISS"
    assert httpx.post(public + "/v1/chat/completions", json=body).headers["x-cache"] == "HIT"
    refused = httpx.post(metrics + "/v1/chat/completions", json=body)
    assert refused.status_code == 404 and "public listener" in refused.json()["error"]["message"]
    for path in ("/health", "/health/detailed", "/metrics", "/kv-cache-metrics", "/dashboard"):
        hidden = httpx.get(public + path)
        assert hidden.status_code == 404, path
        assert "METRICS_BIND_ADDRESS" in hidden.json()["error"]["message"]
    assert httpx.get(metrics + "/health").json()["status"] == "healthy"
    assert httpx.get(metrics + "/health/detailed").status_code == 200


def test_a_scrape_with_bearer_or_basic_auth(served: tuple[str, str]) -> None:
    _, metrics = served
    headers = {"accept": "text/plain;version=0.0.4"}
    assert httpx.get(metrics + "/metrics", headers=headers).status_code == 401
    bearer = httpx.get(metrics + "/metrics", headers={**headers, "authorization": "Bearer mon"})
    basic = httpx.get(metrics + "/metrics", headers=headers, auth=("prometheus", "mon"))
    wrong = httpx.get(metrics + "/metrics", headers=headers, auth=("prometheus", "nope"))
    assert (bearer.status_code, basic.status_code, wrong.status_code) == (200, 200, 401)
    assert "cachegate_cache_entries" in basic.text


def test_the_same_address_twice_is_refused(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "PORT": str(port),
                                 "METRICS_BIND_ADDRESS": f"127.0.0.1:{port}", "DATA_DIR": str(tmp_path)}, cwd=ROOT)
    assert result.returncode == 2 and "METRICS_BIND_ADDRESS: must differ from HOST:PORT" in result.stderr
