"""Every other /v1 request goes to the upstream unchanged; credentials are forwarded or replaced."""

from __future__ import annotations

import http.client
from typing import Any

import httpx
import orjson
import pytest

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


# -- issue 10.9: nothing leaves /v1 ----------------------------------------------------------------------


def raw_request(proxy: ProxyServer, method: str, target: str) -> tuple[int, bytes]:
    """One request with ``target`` written into the request line byte for byte: ``http.client`` sends it as
    given (it neither decodes nor normalises it), unlike a browser or ``httpx.get(url)``."""
    host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, target, body=b"" if method == "POST" else None,
                           headers={"authorization": "Bearer sk-x"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("target", [
    "/v1/../key/generate", "/v1/%2e%2e/key/generate", "/v1/%2E./key/generate", "/v1/.%2E/key/generate",
    "/v1/models/../../key/generate", "/v1/models%2F..%2F..%2Fkey/generate", "/v1/./models", "/v1//models",
    "/v1/%252e%252e/key/generate",
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_dot_and_empty_segments_never_reach_the_upstream(start_proxy: Any, sim: SimulatorServer, target: str,
                                                         method: str) -> None:
    proxy = start_proxy(upstream_api_key="sk-server-key")
    status, body = raw_request(proxy, method, target)
    assert status == 404
    assert orjson.loads(body)["error"]["code"] == "not_found"
    assert sim.state.targets == []  # the upstream (and so our key) saw nothing


def test_httpx_with_a_pre_encoded_dot_path_is_refused(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_api_key="sk-server-key")
    url = httpx.URL(proxy.url).copy_with(raw_path=b"/v1/%2e%2e/key/generate")
    response = httpx.post(url, json={})
    assert response.status_code == 404
    assert sim.state.targets == []


def test_the_sdk_retrieves_a_model_whose_id_holds_a_slash(proxy: ProxyServer, sim: SimulatorServer) -> None:
    model = proxy.client().models.retrieve("openai/gpt-4o")
    assert model.id == "openai/gpt-4o"
    assert sim.state.targets == ["/v1/models/openai%2Fgpt-4o"]  # still encoded: one segment upstream too


def test_the_upstream_gets_the_path_as_checked(proxy: ProxyServer, sim: SimulatorServer) -> None:
    for target in ("/v1/models/ft:gpt-4o:org:x", "/v1/models/a%41b", "/v1/models/caf%C3%A9?x=1&y=%2F"):
        raw_request(proxy, "GET", target)
    assert sim.state.targets == ["/v1/models/ft:gpt-4o:org:x", "/v1/models/aAb", "/v1/models/caf%C3%A9?x=1&y=%2F"]


def test_a_query_in_the_base_url_is_kept(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_base_url=sim.base_url + "?api-version=2024-06-01")
    assert httpx.get(proxy.base_url + "/models?limit=2").status_code == 200
    assert sim.state.targets == ["/v1/models?api-version=2024-06-01&limit=2"]
