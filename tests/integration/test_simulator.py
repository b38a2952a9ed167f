"""The test support itself: the upstream simulator over real HTTP (via the openai SDK) and RedisServer."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from openai.types.chat import (
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolUnionParam,
)

from tests.support.servers import RedisServer, ServerThread, SimulatorServer, SubprocessServer
from tests.support.simulator import create_simulator

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}]
REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS: list[ChatCompletionToolUnionParam] = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


@pytest.fixture
def client(sim: SimulatorServer) -> openai.OpenAI:
    # No retries: a fault header must surface as exactly one upstream call and one exception.
    return openai.OpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)


def raw_events(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]


def test_plain_completion_content_and_usage(sim: SimulatorServer, client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="sim-model", messages=MESSAGES)
    second = client.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert first.id == "chatcmpl-sim-1"
    assert first.object == "chat.completion"
    assert first.model == "sim-model"
    assert first.system_fingerprint == "fp_sim"
    assert first.choices[0].message.content == "[1] You said: hello there world"
    assert first.choices[0].message.refusal is None
    assert first.choices[0].finish_reason == "stop"
    # 5 prompt words -> 5*4//3+1 = 7; "[1] You said: hello there world" has 6 words -> 9.
    assert first.model_dump(exclude_unset=True)["usage"] == {  # exactly what was on the wire
        "prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16, "prompt_tokens_details": {"cached_tokens": 0}}
    assert second.choices[0].message.content == "[2] You said: hello there world"
    assert sim.state.chat_calls == 2


def test_cached_tokens_header_and_n_choices(sim: SimulatorServer, client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="m", messages=MESSAGES, n=3,
                                          extra_headers={"x-sim-cached-tokens": "5"})
    assert [c.message.content for c in resp.choices] == [
        "[1] You said: hello there world", "[1#1] You said: hello there world",
        "[1#2] You said: hello there world"]
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert resp.model_dump()["usage"]["prompt_tokens_details"]["cached_tokens"] == 5


def test_stream_assembles_to_plain_content_and_ends_with_done(sim: SimulatorServer, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert all(c.object == "chat.completion.chunk" and c.id == "chatcmpl-sim-1" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "[1] You said: hello there world"
    assert len(chunks) == 1 + 6 + 1  # role, one per word, finish
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)

    raw = httpx.post(sim.base_url + "/chat/completions",
                     json={"model": "m", "messages": MESSAGES, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = raw_events(raw.text)
    assert events[-1] == "[DONE]"
    assert "usage" not in orjson.loads(events[0])  # only present when include_usage is asked for


def test_stream_include_usage_chunk(sim: SimulatorServer, client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == []
    usage = chunks[-1].model_dump()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (7, 9, 16)


def test_tool_call_plain_and_streamed(sim: SimulatorServer, client: openai.OpenAI) -> None:
    headers = {"x-sim-tool-call": "true"}
    plain = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, extra_headers=headers)
    assert plain.choices[0].message.tool_calls is not None
    call = plain.choices[0].message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert plain.choices[0].finish_reason == "tool_calls"
    assert plain.choices[0].message.content is None
    assert (call.id, call.function.name) == ("call_sim_1_0", "lookup")
    assert orjson.loads(call.function.arguments) == {"text": "hello there world", "choice": 0}

    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, stream=True,
                                                 extra_headers=headers))
    deltas = [c.model_dump()["choices"][0]["delta"] for c in chunks]
    first = deltas[0]["tool_calls"][0]
    assert (first["index"], first["id"], first["type"]) == (0, "call_sim_2_0", "function")
    assert first["function"] == {"name": "lookup", "arguments": ""}
    pieces: list[str] = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1]]
    assert len(pieces) > 2  # the arguments really arrive split across deltas
    assert orjson.loads("".join(pieces)) == {"text": "hello there world", "choice": 0}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tools_without_header_answer_with_text(sim: SimulatorServer, client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content == "[1] You said: hello there world"


def test_missing_fields_give_openai_400(sim: SimulatorServer) -> None:
    resp = httpx.post(sim.base_url + "/chat/completions", json={"messages": MESSAGES})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "model"
    assert resp.json()["error"]["type"] == "invalid_request_error"
    resp = httpx.post(sim.base_url + "/chat/completions", json={"model": "m"})
    assert (resp.status_code, resp.json()["error"]["param"]) == (400, "messages")


@pytest.mark.parametrize(("status", "exc"), [(500, openai.InternalServerError),
                                             (429, openai.RateLimitError), (404, openai.NotFoundError)])
def test_status_fault(sim: SimulatorServer, client: openai.OpenAI, status: int, exc: type[Exception]) -> None:
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"x-sim-status": str(status)})
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert sim.state.chat_calls == 1


def test_delay_faults(sim: SimulatorServer, client: openai.OpenAI) -> None:
    started = time.monotonic()
    client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"x-sim-delay": "0.3"})
    assert time.monotonic() - started >= 0.3
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=MESSAGES, timeout=0.1,
                                       extra_headers={"x-sim-delay": "1"})

    started = time.monotonic()
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                                 extra_headers={"x-sim-chunk-delay": "0.05"}))
    assert len(chunks) == 8
    assert time.monotonic() - started >= 7 * 0.05


def test_cut_after_ends_stream_without_done(sim: SimulatorServer) -> None:
    resp = httpx.post(sim.base_url + "/chat/completions", headers={"x-sim-cut-after": "3"},
                      json={"model": "m", "messages": MESSAGES, "stream": True})
    assert resp.status_code == 200
    events = raw_events(resp.text)
    assert len(events) == 3
    assert "[DONE]" not in events
    assert [orjson.loads(e)["choices"][0]["delta"].get("content") for e in events] == ["", "[1] ", "You "]


def test_cut_abort_drops_the_connection(sim: SimulatorServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(sim.base_url + "/chat/completions", headers={"x-sim-cut-after": "2", "x-sim-cut-abort": "1"},
                   json={"model": "m", "messages": MESSAGES, "stream": True})


def test_no_finish_and_bad_json(sim: SimulatorServer, client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"x-sim-no-finish": "true"})
    assert resp.choices[0].finish_reason is None
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                                 extra_headers={"x-sim-no-finish": "true"}))
    assert all(c.choices[0].finish_reason is None for c in chunks)

    raw = httpx.post(sim.base_url + "/chat/completions", headers={"x-sim-bad-json": "true"},
                     json={"model": "m", "messages": MESSAGES})
    assert raw.status_code == 200
    with pytest.raises(ValueError):
        raw.json()


def test_models_embeddings_and_legacy_completions(sim: SimulatorServer, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["sim-model", "gpt-4o-mini", "text-embedding-3-small"]

    emb = client.embeddings.create(model="e", input=["a cat", "a dog", "a cat"])  # SDK asks for base64
    vectors = [d.embedding for d in emb.data]
    assert len(vectors) == 3 and len(vectors[0]) == 16
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-5
    floats = httpx.post(sim.base_url + "/embeddings", json={"model": "e", "input": "a cat", "dimensions": 4})
    assert len(floats.json()["data"][0]["embedding"]) == 4

    legacy = client.completions.create(model="m", prompt="hi there")
    assert legacy.choices[0].text == "[1] You said: hi there"
    streamed = list(client.completions.create(model="m", prompt="hi there", stream=True))
    assert "".join(c.choices[0].text for c in streamed) == "[2] You said: hi there"
    assert streamed[-1].choices[0].finish_reason == "stop"
    assert sim.state.chat_calls == 0


def test_stats_reset_and_bare(sim: SimulatorServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"x-trace": "abc"})
    client.models.list()
    assert httpx.get(sim.url + "/bare").json() == {"ok": True}
    stats = httpx.get(sim.url + "/_sim/stats").json()
    assert stats["chat_calls"] == 1
    assert stats["calls"] == {"/v1/chat/completions": 1, "/v1/models": 1}  # /bare is not counted
    assert stats["last_headers"]["authorization"] == "Bearer sk-test"
    assert "x-trace" not in sim.state.last_headers  # the last call was /v1/models, without it
    assert sim.state.calls == stats["calls"]

    assert httpx.post(sim.url + "/_sim/reset").json() == {"ok": True}
    assert httpx.get(sim.url + "/_sim/stats").json() == {
        "chat_calls": 0, "calls": {}, "last_headers": {}, "last_body": None}
    resp = client.chat.completions.create(model="m", messages=MESSAGES, extra_headers={"x-trace": "abc"})
    assert resp.choices[0].message.content == "[1] You said: hello there world"
    assert sim.state.last_headers["x-trace"] == "abc"
    assert sim.state.last_body == {"model": "m", "messages": MESSAGES}


def test_server_thread_restarts_cleanly() -> None:
    app, state = create_simulator()
    with ServerThread(app) as server:
        assert httpx.get(server.url + "/bare").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/bare")
    assert state.calls == {}


def test_redis_server_restart_keeps_port() -> None:
    with RedisServer() as server:
        port = server.port
        assert server.url == f"redis://127.0.0.1:{port}/0"
        with server.client() as r:
            r.set("k", "v")
            assert r.get("k") == b"v"
        server.restart()
        assert server.port == port
        with server.client() as r:
            assert r.ping() is True
            assert r.get("k") is None  # no persistence: a restart is a cold Redis


def test_redis_url_fixture_is_flushed(redis_url: str, redis_server: RedisServer) -> None:
    assert redis_url == redis_server.url
    with redis_server.client() as r:
        assert r.dbsize() == 0
        r.set("left-behind", "1")  # the next test using redis_url must not see this


def test_subprocess_server_serves_the_simulator() -> None:
    cmd = [sys.executable, "-m", "tests.support.simulator", "--port", "{port}"]
    with SubprocessServer(cmd, health_path="/bare", startup_timeout=30, cwd=str(REPO_ROOT)) as server:
        assert httpx.get(server.url + "/v1/models").json()["object"] == "list"
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/bare")
