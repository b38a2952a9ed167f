"""Every other /v1 request goes to the upstream unchanged; credentials are forwarded or replaced."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer


def test_models_and_embeddings_pass_through(proxy: ProxyServer, sim: SimulatorServer) -> None:
    client = proxy.client()
    models = client.models.list()
    assert [m.id for m in models.data] == ["sim-model", "gpt-4o-mini", "text-embedding-3-small"]
    embedding = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    assert len(embedding.data) == 2
    assert len(embedding.data[0].embedding) == 16
    assert sim.state.calls["/v1/models"] == 1
    assert sim.state.calls["/v1/embeddings"] == 1
    assert sim.state.chat_calls == 0


def test_legacy_completions_stream_through(proxy: ProxyServer, sim: SimulatorServer) -> None:
    stream = proxy.client().completions.create(model="sim-model", prompt="Once upon a time", stream=True)
    pieces = [chunk.choices[0].text for chunk in stream if chunk.choices]
    assert len(pieces) > 1
    assert "".join(pieces).startswith("[1]")


def test_query_strings_and_statuses_pass_through(proxy: ProxyServer, sim: SimulatorServer) -> None:
    response = httpx.post(proxy.base_url + "/embeddings?trace=1", json={"input": "x"},
                          headers={"x-sim-status": "418"})
    assert response.status_code == 418
    assert response.json()["error"]


def test_client_key_is_forwarded(proxy: ProxyServer, sim: SimulatorServer) -> None:
    proxy.client(api_key="sk-client-key").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-bypass-cache": "1"})
    headers = sim.state.last_headers
    assert headers["authorization"] == "Bearer sk-client-key"
    assert "x-bypass-cache" not in headers


def test_upstream_api_key_replaces_the_clients(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_api_key="sk-server-key")
    proxy.client(api_key="sk-client-key").models.list()
    assert sim.state.last_headers["authorization"] == "Bearer sk-server-key"
    proxy.client(api_key="sk-client-key").chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}])
    assert sim.state.last_headers["authorization"] == "Bearer sk-server-key"
