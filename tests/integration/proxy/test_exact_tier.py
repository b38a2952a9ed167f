"""The exact tier's behaviour, run against every backend (the ``proxy`` fixture is parametrised)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a cache?"}]


def ask(proxy: ProxyServer, *, api_key: str = "sk-test-alice", headers: dict[str, str] | None = None,
        **params: Any) -> Any:
    params.setdefault("model", MODEL)
    params.setdefault("messages", MESSAGES)
    raw = proxy.client(api_key).chat.completions.with_raw_response.create(extra_headers=headers or {}, **params)
    return raw


def ask_stream(proxy: ProxyServer, *, headers: dict[str, str] | None = None, **params: Any) -> tuple[Any, list[Any]]:
    params.setdefault("model", MODEL)
    params.setdefault("messages", MESSAGES)
    raw = proxy.client().chat.completions.with_raw_response.create(stream=True, extra_headers=headers or {},
                                                                   **params)
    return raw, list(raw.parse())


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_hit_never_reaches_the_upstream(proxy: ProxyServer, sim: SimulatorServer) -> None:
    first = ask(proxy)
    hits = [ask(proxy) for _ in range(3)]
    assert first.headers["x-cache"] == "MISS"
    assert "x-cache-tier" not in first.headers
    for hit in hits:
        assert hit.headers["x-cache"] == "HIT"
        assert hit.headers["x-cache-tier"] == "exact"
        assert int(hit.headers["age"]) >= 0
        served, stored = hit.parse().model_dump(), first.parse().model_dump()
        assert {k: v for k, v in served.items() if k not in ("id", "created")} == \
            {k: v for k, v in stored.items() if k not in ("id", "created")}
        assert served["id"] != stored["id"]  # every answer its own completion id...
        assert hit.headers["x-cache-original-id"] == stored["id"]  # ...and the stored one in a header
    assert len({hit.parse().id for hit in hits}) == 3
    assert sim.state.chat_calls == 1
    assert first.parse().choices[0].message.content == "[1] You said: What is a cache?"


def test_stream_miss_then_stream_hit(proxy: ProxyServer, sim: SimulatorServer) -> None:
    miss, miss_chunks = ask_stream(proxy)
    hit, hit_chunks = ask_stream(proxy)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert miss.headers["content-type"].startswith("text/event-stream")
    assert hit.headers["content-type"].startswith("text/event-stream")
    assert streamed_text(miss_chunks) == streamed_text(hit_chunks) == "[1] You said: What is a cache?"
    assert hit_chunks[-1].choices[0].finish_reason == "stop"
    assert sim.state.chat_calls == 1


def test_plain_entry_answers_a_stream_request(proxy: ProxyServer, sim: SimulatorServer) -> None:
    plain = ask(proxy).parse()
    raw, chunks = ask_stream(proxy, stream_options={"include_usage": True})
    assert raw.headers["x-cache"] == "HIT"
    assert streamed_text(chunks) == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert len({c.id for c in chunks}) == 1 and chunks[0].id != plain.id  # one id of its own for the stream
    assert raw.headers["x-cache-original-id"] == plain.id
    assert sim.state.chat_calls == 1


def test_stream_entry_answers_a_plain_request(proxy: ProxyServer, sim: SimulatorServer) -> None:
    _, chunks = ask_stream(proxy, stream_options={"include_usage": True})
    hit = ask(proxy)
    completion = hit.parse()
    assert hit.headers["x-cache"] == "HIT"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == streamed_text(chunks)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == chunks[-1].usage.total_tokens
    assert sim.state.chat_calls == 1


def test_raw_sse_of_a_replayed_stream_is_well_formed(proxy: ProxyServer) -> None:
    ask(proxy)
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", proxy.base_url + "/chat/completions", json=body,
                      headers={"authorization": "Bearer sk-test-alice"}) as response:
        text = response.read().decode()
    events = [block for block in text.split("\n\n") if block]
    assert all(event.startswith("data: ") for event in events)
    assert events[-1] == "data: [DONE]"


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("change", [
    {"model": "gpt-4o"},
    {"temperature": 0.3},
    {"top_p": 0.5},
    {"max_tokens": 17},
    {"seed": 7},
    {"n": 2},
    {"stop": ["\n"]},
    {"presence_penalty": 0.5},
    {"frequency_penalty": 0.5},
    {"logprobs": True},
    {"tools": TOOLS},
    {"response_format": {"type": "json_object"}},
    {"messages": [{"role": "system", "content": "Be verbose."}, MESSAGES[1]]},
    {"messages": [MESSAGES[0], {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                  MESSAGES[1]]},
    {"messages": [MESSAGES[0], {"role": "user", "content": "What is a cache"}]},
], ids=lambda change: next(iter(change)))
def test_each_output_affecting_field_gives_a_miss(proxy: ProxyServer, sim: SimulatorServer,
                                                  change: dict[str, Any]) -> None:
    ask(proxy)
    changed = ask(proxy, **change)
    assert changed.headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 2
    assert ask(proxy, **change).headers["x-cache"] == "HIT"
    assert sim.state.chat_calls == 2


def test_fields_that_cannot_change_the_answer_still_hit(proxy: ProxyServer, sim: SimulatorServer) -> None:
    ask(proxy, temperature=1)
    assert ask(proxy, temperature=1.0, user="someone-else", metadata={"k": "v"}).headers["x-cache"] == "HIT"
    assert sim.state.chat_calls == 1


def test_tenants_are_kept_apart(proxy: ProxyServer, sim: SimulatorServer) -> None:
    ask(proxy, api_key="sk-alice")
    assert ask(proxy, api_key="sk-bob").headers["x-cache"] == "MISS"
    assert ask(proxy, api_key="sk-alice").headers["x-cache"] == "HIT"
    assert ask(proxy, api_key="sk-alice", headers={"x-cache-namespace": "team-a"}).headers["x-cache"] == "MISS"
    assert ask(proxy, api_key="sk-alice", headers={"x-cache-namespace": "team-a"}).headers["x-cache"] == "HIT"
    assert sim.state.chat_calls == 3


def test_keys_never_appear_in_cache_keys(proxy: ProxyServer) -> None:
    hit = (ask(proxy, api_key="sk-secret-123"), ask(proxy, api_key="sk-secret-123"))[1]
    assert "sk-secret-123" not in hit.headers["x-cache-key"]


def test_bypass_neither_reads_nor_writes(proxy: ProxyServer, sim: SimulatorServer) -> None:
    ask(proxy)
    bypassed = ask(proxy, headers={"x-bypass-cache": "true"})
    assert bypassed.headers["x-cache"] == "BYPASS"
    assert bypassed.parse().choices[0].message.content.startswith("[2]")
    fresh = ask(proxy, messages=[{"role": "user", "content": "new"}], headers={"x-bypass-cache": "true"})
    assert fresh.headers["x-cache"] == "BYPASS"
    assert ask(proxy, messages=[{"role": "user", "content": "new"}]).headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 4


def test_no_cache_refreshes_the_entry(proxy: ProxyServer, sim: SimulatorServer) -> None:
    ask(proxy)
    refreshed = ask(proxy, headers={"cache-control": "no-cache"})
    assert refreshed.headers["x-cache"] == "MISS"
    time.sleep(0.05)  # the write happens after the answer is sent
    hit = ask(proxy)
    assert hit.headers["x-cache"] == "HIT"
    assert hit.parse().choices[0].message.content.startswith("[2]")
    assert sim.state.chat_calls == 2


def test_no_store_reads_but_never_writes(proxy: ProxyServer, sim: SimulatorServer) -> None:
    assert ask(proxy, headers={"cache-control": "no-store"}).headers["x-cache"] == "MISS"
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert ask(proxy, headers={"cache-control": "no-store"}).headers["x-cache"] == "HIT"
    assert sim.state.chat_calls == 2


def test_ttl_header_expires_the_entry(proxy: ProxyServer, sim: SimulatorServer) -> None:
    ask(proxy, headers={"x-cache-ttl": "1"})
    assert ask(proxy).headers["x-cache"] == "HIT"
    time.sleep(1.2)
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 2


def test_creative_temperature_gets_the_short_ttl(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_ttl_creative=1, cache_creative_temperature=0.5)
    ask(proxy, temperature=0.9)
    ask(proxy, temperature=0.2)
    time.sleep(1.2)
    assert ask(proxy, temperature=0.9).headers["x-cache"] == "MISS"
    assert ask(proxy, temperature=0.2).headers["x-cache"] == "HIT"


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_upstream_errors_pass_through_and_are_not_stored(proxy: ProxyServer, sim: SimulatorServer,
                                                         status: int) -> None:
    response = httpx.post(proxy.base_url + "/chat/completions", json={"model": MODEL, "messages": MESSAGES},
                          headers={"x-sim-status": str(status), "authorization": "Bearer sk-test-alice"})
    assert response.status_code == status
    assert "error" in response.json()
    assert response.headers["x-cache"] == "MISS"
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 2


@pytest.mark.parametrize("fault", [{"x-sim-cut-after": "2"}, {"x-sim-no-finish": "true"}])
def test_cut_or_unfinished_streams_are_not_stored(proxy: ProxyServer, sim: SimulatorServer,
                                                  fault: dict[str, str]) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", proxy.base_url + "/chat/completions", json=body,
                      headers={**fault, "authorization": "Bearer sk-test-alice"}) as response:
        text = response.read().decode()
    assert "[DONE]" not in text or "x-sim-no-finish" in fault
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 2


def test_unfinished_plain_answers_and_bad_json_are_not_stored(proxy: ProxyServer, sim: SimulatorServer) -> None:
    unfinished = ask(proxy, headers={"x-sim-no-finish": "true"})
    assert unfinished.parse().choices[0].finish_reason is None
    response = httpx.post(proxy.base_url + "/chat/completions", json={"model": MODEL, "messages": MESSAGES},
                          headers={"x-sim-bad-json": "true", "authorization": "Bearer sk-test-alice"})
    assert response.status_code == 200
    assert ask(proxy).headers["x-cache"] == "MISS"
    assert sim.state.chat_calls == 3


def test_every_response_carries_a_request_id(proxy: ProxyServer) -> None:
    ids = {ask(proxy).headers["x-request-id"], ask(proxy).headers["x-request-id"]}
    bad = httpx.post(proxy.base_url + "/chat/completions", content=b"{")
    assert len(ids) == 2
    assert bad.headers["x-request-id"]
    echoed = httpx.post(proxy.base_url + "/chat/completions", content=b"{", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


async def test_async_client_plain_and_stream(proxy: ProxyServer, sim: SimulatorServer) -> None:
    async with proxy.async_client() as client:
        first = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == first.choices[0].message.content
    assert sim.state.chat_calls == 1


def test_streams_are_stored_with_usage_the_client_did_not_ask_for(proxy: ProxyServer,
                                                                  sim: SimulatorServer) -> None:
    _, chunks = ask_stream(proxy)
    assert all(chunk.choices for chunk in chunks)  # the usage event we asked for is not shown
    assert sim.state.last_body["stream_options"] == {"include_usage": True}
    hit = ask(proxy).parse()
    assert hit.usage is not None
    assert hit.usage.completion_tokens > 0


def test_stream_usage_can_be_left_alone(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(upstream_stream_usage=False)
    ask_stream(proxy)
    assert "stream_options" not in sim.state.last_body
