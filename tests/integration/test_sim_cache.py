"""The simulator's provider cache over HTTP: the fake clock, the truth, TTL, routing pins and rejections."""

from __future__ import annotations

import httpx

from tests.support.servers import SimulatorServer

WORDS = " ".join(f"w{i}" for i in range(1100))


def ask(sim: SimulatorServer, model: str, **extra: object) -> httpx.Response:
    headers = extra.pop("headers", {})
    body = {"model": model, "messages": [{"role": "system", "content": WORDS}], **extra}
    return httpx.post(sim.base_url + "/chat/completions", json=body, headers=headers, timeout=10)  # type: ignore[arg-type]


def test_clock_ttl_and_truth(sim: SimulatorServer) -> None:
    start = httpx.get(sim.url + "/_clock").json()["now"]
    first = ask(sim, "sim-kimi")  # TTL 150 s, 256-token blocks
    assert first.json()["usage"]["cached_tokens"] == 0
    assert first.headers["x-request-id"] == "sim-1"
    assert ask(sim, "sim-kimi").json()["usage"]["cached_tokens"] == 1024
    assert httpx.post(sim.url + "/_clock", json={"advance": 151}).json()["now"] > start + 151
    assert ask(sim, "sim-kimi").json()["usage"]["cached_tokens"] == 0  # expired
    truth = httpx.get(sim.url + "/_truth", params={"model": "sim-kimi"}).json()
    assert [(t["seq"], t["hit"], t["reason"]) for t in truth] == [
        (1, False, "no stored prefix"), (2, True, "hit"), (3, False, "no stored prefix")]
    assert truth[1]["at"] == start + truth[0]["ttft"]  # the clock moved by the first answer's time to first token
    assert httpx.post(sim.url + "/_clock", json={"advance": "soon"}).status_code == 400


def test_pins_route_to_one_server_and_rejections_are_400(sim: SimulatorServer) -> None:
    servers = {ask(sim, "sim-routed", prompt_cache_key="k").headers["x-venice-host-name"] for _ in range(4)}
    assert len(servers) == 1
    unpinned = {ask(sim, "sim-routed").headers["x-venice-host-name"] for _ in range(4)}
    assert len(unpinned) == 4  # round-robin: a balancer without affinity
    refused = ask(sim, "sim-grok", prompt_cache_retention="24h")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "Extra inputs are not permitted, field: 'prompt_cache_retention'"


def test_balances_go_down(sim: SimulatorServer) -> None:
    first, second = ask(sim, "sim-openai"), ask(sim, "sim-openai")
    assert float(second.headers["x-venice-balance-usd"]) < float(first.headers["x-venice-balance-usd"]) < 100
    assert float(second.headers["x-venice-balance-diem"]) < float(first.headers["x-venice-balance-diem"])
