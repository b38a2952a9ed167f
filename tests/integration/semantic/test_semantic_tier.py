"""The semantic tier end to end: the openai SDK against a real proxy, the real model behind the embedding
service over HTTP, and each store (qdrant-edge, and qdrant-client against its local mode)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.embedding import start_embedding_service
from tests.support.proxy import ProxyServer, admin_headers
from tests.support.servers import SimulatorServer

from .conftest import StartSemantic, tier_of, wait_stored

MODEL = "gpt-4o-mini"
SYSTEM = {"role": "system", "content": "Be brief."}
STORED = "What is the capital of France?"
PARAPHRASE = "Which city is the capital of France?"


def messages(text: str, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    return [SYSTEM, *(history or []), {"role": "user", "content": text}]


def ask(proxy: ProxyServer, text: str, *, api_key: str = "sk-test-alice", headers: dict[str, str] | None = None,
        history: list[dict[str, str]] | None = None, **params: Any) -> Any:
    params.setdefault("model", MODEL)
    params.setdefault("messages", messages(text, history))
    return proxy.client(api_key).chat.completions.with_raw_response.create(extra_headers=headers or {}, **params)


def content(raw: Any) -> str:
    return str(raw.parse().choices[0].message.content)


def streamed(proxy: ProxyServer, text: str) -> tuple[Any, str]:
    raw = proxy.client().chat.completions.with_raw_response.create(model=MODEL, messages=messages(text), stream=True)
    chunks = list(raw.parse())
    return raw, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def store(proxy: ProxyServer, text: str = STORED, count: int = 1, **kwargs: Any) -> Any:
    first = ask(proxy, text, **kwargs)
    assert first.headers["x-cache"] == "MISS"
    wait_stored(proxy, count)
    return first


def test_a_paraphrase_hits_in_plain_and_stream_form(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = start_semantic()
    first = store(proxy)
    hit = ask(proxy, PARAPHRASE)
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-cache-tier"] == "semantic"
    assert 0.9 <= float(hit.headers["x-cache-similarity"]) <= 1.0
    assert content(hit) == content(first) == f"[1] You said: {STORED}"
    # its own completion id (issue 10, item 5), naming the neighbour's original
    assert hit.parse().id != first.parse().id and hit.headers["x-cache-original-id"] == first.parse().id
    raw, text = streamed(proxy, "What's the capital of France?")
    assert raw.headers["x-cache"] == "HIT" and raw.headers["x-cache-tier"] == "semantic"
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert text == content(first)
    assert sim.state.chat_calls == 1


def test_a_streamed_answer_is_stored_and_served_plain(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = start_semantic()
    raw, text = streamed(proxy, STORED)
    assert raw.headers["x-cache"] == "MISS"
    wait_stored(proxy, 1)
    hit = ask(proxy, PARAPHRASE)
    assert (hit.headers["x-cache"], hit.headers["x-cache-tier"]) == ("HIT", "semantic")
    assert content(hit) == text
    assert sim.state.chat_calls == 1


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"},
    {"temperature": 0.3},
    {"max_tokens": 17},
    {"seed": 7},
    {"messages": [{"role": "system", "content": "Be verbose."}, {"role": "user", "content": PARAPHRASE}]},
    {"history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"api_key": "sk-test-bob"},
    {"headers": {"x-cache-namespace": "team-a"}},
], ids=lambda change: next(iter(change)))
def test_every_scope_field_makes_a_miss(start_semantic: StartSemantic, sim: SimulatorServer,
                                        change: dict[str, Any]) -> None:
    proxy = start_semantic()
    store(proxy)
    changed = ask(proxy, PARAPHRASE, **change)
    assert changed.headers["x-cache"] == "MISS"
    assert content(changed).startswith("[2]")
    assert ask(proxy, PARAPHRASE).headers["x-cache-tier"] == "semantic"  # the paraphrase itself would hit


@pytest.mark.parametrize(("stored", "asked", "guard"), [
    ("Give me three tips for better sleep.", "Give me five tips for better sleep.", "numbers"),
    ("Is it safe to drink tap water in Canada?", "Is it unsafe to drink tap water in Canada?", "negation"),
    ("Explain how a bill becomes a law in the United States.",
     "Explain how a bill becomes a law in the United Kingdom.", "names"),
    ("How do I enable dark mode in Chrome?", "How do I disable dark mode in Chrome?", "opposites"),
    ("Convert Celsius to Fahrenheit.", "Convert Fahrenheit to Celsius.", "order"),
    ("What are the most important things to check before signing a lease for an apartment?",
     "What are the most important things to check before signing a lease for an office?", "substitution"),
], ids=lambda value: value if value in {"numbers", "negation", "names", "opposites", "order", "substitution"}
    else "")
def test_each_guard_makes_a_miss(start_semantic: StartSemantic, sim: SimulatorServer, stored: str, asked: str,
                                 guard: str) -> None:
    proxy = start_semantic(semantic_threshold=0.85)  # every pair here is above it: only the guard says no
    store(proxy, stored)
    refused = ask(proxy, asked)
    assert refused.headers["x-cache"] == "MISS"
    assert content(refused) == f"[2] You said: {asked}"
    assert tier_of(proxy).stats.get(f"refused_{guard}") == 1


def test_shadow_mode_counts_would_be_hits_but_always_asks_the_upstream(start_semantic: StartSemantic,
                                                                        sim: SimulatorServer) -> None:
    proxy = start_semantic(semantic_mode="shadow")
    store(proxy)
    for n, text in enumerate([PARAPHRASE, "What's the capital of France?"], start=2):
        answer = ask(proxy, text)
        assert answer.headers["x-cache"] == "MISS"
        assert "x-cache-tier" not in answer.headers
        assert content(answer) == f"[{n}] You said: {text}"
    assert tier_of(proxy).stats["shadow_hits"] == 2
    assert sim.state.chat_calls == 3


def test_feedback_evicts_the_entry_and_the_pair_never_matches_again(start_semantic: StartSemantic,
                                                                    sim: SimulatorServer) -> None:
    proxy = start_semantic()
    store(proxy)
    hit = ask(proxy, PARAPHRASE)
    assert hit.headers["x-cache-tier"] == "semantic"
    widened = httpx.post(proxy.url + "/admin/cache/feedback?all=1", headers=admin_headers(proxy),
                         json={"request_id": hit.headers["x-request-id"]})
    assert widened.status_code == 400 and widened.json()["error"]["param"] == "all"
    unknown_key = httpx.post(proxy.url + "/admin/cache/feedback", headers=admin_headers(proxy),
                             json={"request_id": hit.headers["x-request-id"], "verdict": "wrong", "scope": "all"})
    assert unknown_key.status_code == 400 and unknown_key.json()["error"]["param"] == "scope"
    verdict = httpx.post(proxy.url + "/admin/cache/feedback",
                         headers={**admin_headers(proxy), "x-feedback-api-key": "sk-test-alice"},
                         json={"request_id": hit.headers["x-request-id"], "verdict": "wrong"})
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["evicted"] is True
    after = ask(proxy, PARAPHRASE)
    assert after.headers["x-cache"] == "MISS"
    assert content(after) == f"[2] You said: {PARAPHRASE}"
    unknown = httpx.post(proxy.url + "/admin/cache/feedback", headers=admin_headers(proxy),
                         json={"request_id": "nope", "verdict": "wrong"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "request_id"
    bad = httpx.post(proxy.url + "/admin/cache/feedback", headers=admin_headers(proxy),
                     json={"request_id": "x", "verdict": "maybe"})
    assert bad.status_code == 400


def feedback(proxy: ProxyServer, request_id: str, api_key: str) -> httpx.Response:
    return httpx.post(proxy.url + "/admin/cache/feedback",
                      headers={**admin_headers(proxy), "x-feedback-api-key": api_key},
                      json={"request_id": request_id, "verdict": "wrong"})


def test_a_client_cannot_take_over_a_remembered_request_id(start_semantic: StartSemantic,
                                                           sim: SimulatorServer) -> None:
    # issue 10.15: mallory reuses the id of alice's semantic hit; feedback on it must still reach alice's entry
    proxy = start_semantic()
    store(proxy)
    store(proxy, api_key="sk-test-mallory", count=2)
    alice = ask(proxy, PARAPHRASE, headers={"x-request-id": "req-1"})
    assert alice.headers["x-cache-tier"] == "semantic" and alice.headers["x-request-id"] == "req-1"
    mallory = ask(proxy, PARAPHRASE, api_key="sk-test-mallory", headers={"x-request-id": "req-1"})
    assert mallory.headers["x-cache-tier"] == "semantic"
    assert mallory.headers["x-request-id"] != "req-1"  # a fresh id of ours
    assert feedback(proxy, "req-1", "sk-test-alice").json()["evicted"] is True
    assert ask(proxy, PARAPHRASE).headers["x-cache"] == "MISS"  # alice's wrong entry is gone
    assert ask(proxy, PARAPHRASE, api_key="sk-test-mallory").headers["x-cache-tier"] == "semantic"  # not mallory's
    assert ask(proxy, "Fresh question", headers={"x-request-id": "req-2"}).headers["x-request-id"] == "req-2"


def test_feedback_for_another_tenant_is_refused(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = start_semantic()
    store(proxy)
    hit = ask(proxy, PARAPHRASE)
    refused = feedback(proxy, hit.headers["x-request-id"], "sk-test-mallory")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "unknown_request_id"
    assert ask(proxy, PARAPHRASE).headers["x-cache-tier"] == "semantic"
    assert feedback(proxy, hit.headers["x-request-id"], "sk-test-alice").json()["evicted"] is True


def test_an_expired_entry_is_never_served(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = start_semantic()
    store(proxy, headers={"x-cache-ttl": "1"})
    assert ask(proxy, PARAPHRASE).headers["x-cache-tier"] == "semantic"
    time.sleep(1.2)
    expired = ask(proxy, "What's the capital of France?")
    assert expired.headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 2


def test_requests_with_images_skip_the_tier(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = start_semantic()
    store(proxy)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}
    parts = [{"type": "text", "text": PARAPHRASE}, image]
    answer = ask(proxy, PARAPHRASE, messages=[SYSTEM, {"role": "user", "content": parts}])
    assert answer.headers["x-cache"] == "MISS"
    assert tier_of(proxy).stats["skipped"] == 1


def test_the_embedding_service_going_away_fails_open(start_proxy: Any, sim: SimulatorServer,
                                                     loaded_encoder: Any) -> None:
    service = start_embedding_service()
    try:
        proxy = start_proxy(semantic_mode="serve", embedding_url=service.url, embedding_timeout=2.0)
        store(proxy)
        assert ask(proxy, PARAPHRASE).headers["x-cache-tier"] == "semantic"
    finally:
        service.stop()
    for n, text in enumerate(["What's the capital of France?", "Tell me the capital of France."], start=2):
        answer = ask(proxy, text)
        assert answer.headers["x-cache"] == "MISS"
        assert content(answer) == f"[{n}] You said: {text}"
    assert proxy.parts.failopen.state("embedding").failures >= 2
    health = httpx.get(proxy.url + "/health").json()
    assert health["services"]["embedding"]["status"] == "down"


def test_the_default_embeds_in_process_and_stores_under_data_dir(start_proxy: Any, sim: SimulatorServer,
                                                                 loaded_encoder: Any) -> None:
    proxy = start_proxy(semantic_mode="serve")
    store(proxy)
    assert ask(proxy, PARAPHRASE).headers["x-cache-tier"] == "semantic"
    services = httpx.get(proxy.url + "/health").json()["services"]
    assert services["embedding"]["status"] == "embedded"
    assert services["qdrant"]["status"] == "embedded"
    assert "qdrant-edge" in services["qdrant"]["backend"]


def test_admin_clear_empties_the_semantic_tier(start_semantic: StartSemantic, sim: SimulatorServer) -> None:
    proxy = start_semantic()
    store(proxy)
    store(proxy, "How do I boil an egg?", count=2, headers={"x-cache-namespace": "kitchen"})
    narrowed = httpx.post(proxy.url + "/admin/cache/clear", headers=admin_headers(proxy),
                          json={"tier": "semantic", "namespace": "kitchen"})
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["removed"] == {"semantic": 1}
    assert ask(proxy, PARAPHRASE).headers["x-cache-tier"] == "semantic"
    cleared = httpx.post(proxy.url + "/admin/cache/clear", headers=admin_headers(proxy), json={"tier": "semantic"})
    assert cleared.json()["removed"] == {"semantic": 1}
    assert ask(proxy, "What's the capital of France?").headers["x-cache"] == "MISS"


def test_an_unreachable_qdrant_server_fails_open(start_proxy: Any, sim: SimulatorServer,
                                                 embedding_service: Any) -> None:
    from tests.support.servers import free_port

    proxy = start_proxy(semantic_mode="serve", embedding_url=embedding_service.url,
                        qdrant_url=f"http://127.0.0.1:{free_port()}", qdrant_timeout=0.5)
    for n, text in enumerate([STORED, PARAPHRASE], start=1):
        answer = ask(proxy, text)
        assert answer.status_code == 200
        assert answer.headers["x-cache"] == "MISS"
        assert content(answer) == f"[{n}] You said: {text}"
    assert proxy.parts.failopen.state("qdrant").failures >= 1
    health = httpx.get(proxy.url + "/health").json()
    assert health["services"]["qdrant"]["status"] == "down"


def test_a_semantic_hit_names_its_entry_and_admin_can_delete_it(start_semantic: StartSemantic,
                                                                 sim: SimulatorServer) -> None:
    proxy = start_semantic()
    store(proxy)
    hit = ask(proxy, PARAPHRASE)
    key = hit.headers["x-cache-key"]
    assert key.startswith(proxy.settings.cache_key_prefix + "semantic:")
    deleted = httpx.delete(f"{proxy.url}/admin/cache/entries/{key}", headers=admin_headers(proxy))
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] == 1
    assert httpx.delete(f"{proxy.url}/admin/cache/entries/{key}", headers=admin_headers(proxy)).status_code == 404
    again = ask(proxy, PARAPHRASE)
    assert again.headers.get("x-cache-tier") != "semantic"
    assert sim.state.chat_calls == 2
