"""Streams through the proxy: every event passed on byte for byte (but the usage event cachegate asked for),
every field of an answer kept when it is stored and replayed, and nothing the cache side meets can break
the client's stream (issue 10, items 1-3)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "stream it"}], "stream": True}
HEAD = {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 7, "model": "gpt-4o-mini"}


def event(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps({**HEAD, "choices": choices, **extra}) + b"\n\n"


USAGE = event(None, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})


def send(proxy: ProxyServer, raw: bytes, *, body: dict[str, Any] = BODY, chunk: int = 0) -> httpx.Response:
    headers = {"authorization": "Bearer sk-test-alice", "x-sim-raw-sse": base64.b64encode(raw).decode()}
    if chunk:
        headers["x-sim-chunk-size"] = str(chunk)
    return httpx.post(proxy.base_url + "/chat/completions", json=body, headers=headers, timeout=10)


def plain(proxy: ProxyServer) -> httpx.Response:
    return httpx.post(proxy.base_url + "/chat/completions", json={**BODY, "stream": False},
                      headers={"authorization": "Bearer sk-test-alice"}, timeout=10)


@pytest.mark.parametrize("chunk", [0, 7])  # whole, and cut into 7-byte pieces
def test_comments_fields_and_line_endings_reach_the_client_as_sent(proxy: ProxyServer, chunk: int) -> None:
    kept = (b": keep-alive\r\n\r\n"  # comments providers send during long reasoning
            + b"event: message\rid: 1\rretry: 500\rdata: " + orjson.dumps(
                {**HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "he"}}]}) + b"\r\r"
            + b": still thinking\n\n"
            + event({"content": "llo"}, "stop"))
    response = send(proxy, kept + USAGE + b"data: [DONE]\n\n", chunk=chunk)
    assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
    # the usage event cachegate asked for is left out; every other byte is the upstream's
    assert response.content == kept + b"data: [DONE]\n\n"


def test_cr_only_line_endings_are_a_stream_not_an_empty_answer(proxy: ProxyServer) -> None:
    raw = event({"role": "assistant", "content": "hi"}, "stop").replace(b"\n", b"\r") + b"data: [DONE]\r\r"
    response = send(proxy, raw)
    assert response.content == raw
    again = plain(proxy)
    assert again.headers["x-cache"] == "HIT" and again.json()["choices"][0]["message"]["content"] == "hi"


def test_fields_the_old_assembler_dropped_are_stored_and_replayed(proxy: ProxyServer) -> None:
    raw = (event({"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": ""}})
           + event({"function_call": {"arguments": '{"city":'}})
           + event({"function_call": {"arguments": ' "Paris"}'}})
           + event({"reasoning_content": "The user wants "}) + event({"reasoning_content": "the weather."})
           + event({"annotations": [{"type": "url_citation", "url_citation": {"url": "https://x.example"}}]})
           + event({}, "function_call") + USAGE + b"data: [DONE]\n\n")
    assert send(proxy, raw).status_code == 200
    hit = plain(proxy)
    assert hit.headers["x-cache"] == "HIT"
    message = hit.json()["choices"][0]["message"]
    assert message["function_call"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert message["content"] is None
    assert message["reasoning_content"] == "The user wants the weather."
    assert message["annotations"] == [{"type": "url_citation", "url_citation": {"url": "https://x.example"}}]
    assert hit.json()["choices"][0]["finish_reason"] == "function_call"
    replayed = httpx.post(proxy.base_url + "/chat/completions", json=BODY,
                          headers={"authorization": "Bearer sk-test-alice"}, timeout=10)
    deltas = [orjson.loads(line[6:])["choices"][0]["delta"] for line in replayed.content.split(b"\n\n")
              if line.startswith(b"data: {") and orjson.loads(line[6:])["choices"]]
    assert "".join(d.get("function_call", {}).get("arguments", "") for d in deltas) == '{"city": "Paris"}'
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == "The user wants the weather."


def test_list_valued_content_is_relayed_and_kept_as_a_list(proxy: ProxyServer) -> None:
    raw = event({"role": "assistant", "content": [{"type": "text", "text": "a list"}]}, "stop") + b"data: [DONE]\n\n"
    assert send(proxy, raw).content == raw  # the old assembler raised on it and aborted the stream
    assert plain(proxy).json()["choices"][0]["message"]["content"] == [{"type": "text", "text": "a list"}]


@pytest.mark.parametrize("odd", [
    b"data: " + orjson.dumps({**HEAD, "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": None, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "stop"}]})
    + b"\n\n",  # a tool call whose index is null
    b"data: {not json}\n\n" + event({"role": "assistant", "content": "x"}, "stop"),
])
def test_what_the_cache_cannot_fold_costs_the_entry_never_the_stream(proxy: ProxyServer, odd: bytes) -> None:
    raw = odd + b"data: [DONE]\n\n"
    response = send(proxy, raw)
    assert response.status_code == 200 and response.content == raw  # the whole stream, as sent
    assert send(proxy, raw).headers["x-cache"] == "MISS"  # and nothing was stored


def test_a_null_choice_index_is_choice_zero(proxy: ProxyServer, sim: SimulatorServer) -> None:
    raw = (b"data: " + orjson.dumps({**HEAD, "choices": [{"index": None, "delta": {"role": "assistant",
                                                                                   "content": "ok"}}]}) + b"\n\n"
           + event({}, "stop") + b"data: [DONE]\n\n")
    assert send(proxy, raw).content == raw
    assert plain(proxy).json()["choices"][0]["message"]["content"] == "ok"
