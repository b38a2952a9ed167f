"""Issue 10.14: credentials inside UPSTREAM_BASE_URL (or any dependency's URL) never reach a client: not in a
502/504 body, not in the error event of a stream cut mid-way, not in the always-open ``/health``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.servers import SimulatorServer, free_port

SECRETS = ("pw-user-secret", "qs-key-secret")
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Is anyone there?"}]}


def with_secrets(base_url: str, *, query: bool = True) -> str:
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://alice:{SECRETS[0]}@{rest}" + (f"?key={SECRETS[1]}&region=eu" if query else "")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("route", ["/chat/completions", "/models"])
def test_a_502_names_the_upstream_without_its_credentials(start_proxy: Any, route: str) -> None:
    proxy = start_proxy(upstream_base_url=with_secrets(f"http://127.0.0.1:{free_port()}/v1"))
    response = httpx.post(proxy.base_url + route, json=BODY, timeout=10) if route != "/models" else \
        httpx.get(proxy.base_url + route, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert "127.0.0.1" in response.text and "<redacted>" in response.text  # still says which upstream
    assert_clean(response.text)


def test_a_504_and_a_stream_cut_mid_way_carry_no_credentials(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_base_url=with_secrets(sim.base_url, query=False), upstream_timeout=0.3)
    slow = httpx.post(proxy.base_url + "/chat/completions", json=BODY, headers={"x-sim-delay": "1"}, timeout=10)
    assert slow.status_code == 504
    assert_clean(slow.text)
    with httpx.stream("POST", proxy.base_url + "/chat/completions", json={**BODY, "stream": True},
                      headers={"x-sim-chunk-delay": "1"}, timeout=10) as response:
        text = response.read().decode()
    assert '"upstream_timeout"' in text
    assert_clean(text)


def test_health_shows_dependency_errors_scrubbed(start_proxy: Any) -> None:
    embedding = with_secrets(f"http://127.0.0.1:{free_port()}")
    proxy = start_proxy(semantic_mode="serve", embedding_url=embedding, embedding_timeout=0.5)
    httpx.post(proxy.base_url + "/chat/completions", json=BODY, timeout=10)  # the tier fails open: last_error
    for path in ("/health", "/health/detailed"):
        response = httpx.get(proxy.url + path, timeout=10)
        services = response.json()["services"]
        assert services["embedding"]["status"] == "down"
        assert "127.0.0.1" in services["embedding"]["error"]
        assert_clean(response.text)
