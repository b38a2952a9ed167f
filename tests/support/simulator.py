"""A small OpenAI-compatible upstream for integration tests and benchmarks.

Answers are deterministic but reveal the call number (``[3] You said: hi``) so a test can tell a fresh
upstream answer from a cached replay. Faults are injected per request with ``x-sim-*`` headers, which the
proxy forwards untouched: ``status``, ``delay``, ``chunk-delay``, ``cut-after``, ``cut-abort``,
``no-finish``, ``bad-json``, ``tool-call``, ``cached-tokens``, ``reject-stream-options`` (a strict upstream),
``raw-sse``/``raw-json`` (base64 of the exact bytes to answer with; ``chunk-size`` cuts an event stream),
``response-headers`` (a JSON object of headers to add to the answer). Run standalone with
``python -m tests.support.simulator --port N [--latency S] [--echo-key]``; what benchmarks use besides
(a fixed latency, an outage window, calls per prompt, answers tagged by key) is in :mod:`tests.support.sim_load`.

Models with a prompt-cache profile (:mod:`tests.support.cache_profiles`, e.g. ``sim-openai``) are answered
by :mod:`tests.support.sim_profiled` instead: a provider-side cache on a fake clock (``GET``/``POST /_clock``
with ``{"advance": s}`` or ``{"set": t}``), whose every decision ``GET /_truth`` lists. With
``catalog="profiles"`` ``/v1/models`` lists those models, Venice-style, instead of the default three.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support.cache_profiles import catalog as profile_catalog
from tests.support.cache_profiles import profile_for
from tests.support.sim_cache import START, ProviderCache, SimClock
from tests.support.sim_load import LoadKnobs, load_routes
from tests.support.sim_profiled import profiled_chat
from tests.support.sim_wire import (
    FINGERPRINT,
    QuietAbort,
    chat_events,
    count_tokens,
    error_response,
    fake_vector,
    flag,
    json_response,
    stream_response,
    text_of,
    words,
)

_Handler = Callable[[Request, Any], Awaitable[Response]]


@dataclass
class SimState:
    """Counters of one simulator; readable from the test thread while the server runs in another."""

    chat_calls: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    last_headers: dict[str, str] = field(default_factory=dict)
    last_query: str = ""
    last_body: Any = None
    seen_prompts: set[bytes] = field(default_factory=set)
    streams_abandoned: int = 0  # streams whose client went away before the end
    #: every request target as it arrived (raw path, still percent-encoded, and query), in order
    targets: list[str] = field(default_factory=list)
    clock: SimClock = field(default_factory=SimClock)
    load: LoadKnobs = field(default_factory=LoadKnobs)
    cache: ProviderCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = ProviderCache(self.clock)

    def stream_abandoned(self) -> None:
        self.streams_abandoned += 1

    def reset(self) -> None:
        self.chat_calls = 0
        self.streams_abandoned = 0
        self.calls.clear()
        self.targets.clear()
        self.last_headers = {}
        self.last_body = None
        self.seen_prompts.clear()
        self.cache.reset()
        self.clock.set(START)
        self.load.reset()

    def stats(self) -> dict[str, Any]:
        return {"chat_calls": self.chat_calls, "calls": dict(self.calls),
                "last_headers": dict(self.last_headers), "last_body": self.last_body}


async def _raw(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0)


def create_simulator(*, catalog: str = "default", latency: float = 0.0,
                     echo_key: bool = False) -> tuple[Starlette, SimState]:
    state = SimState(load=LoadKnobs(latency=latency, echo_key=echo_key))

    def endpoint(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        """Record the call, then apply the faults every endpoint shares before the handler runs."""

        async def run(request: Request) -> Response:
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = None
            path = request.url.path
            state.calls[path] = state.calls.get(path, 0) + 1
            state.last_headers = {k.lower(): v for k, v in request.headers.items()}
            state.last_query = request.url.query
            state.last_body = body
            if path == "/v1/chat/completions":
                state.chat_calls += 1
                if isinstance(body, dict) and isinstance(body.get("messages"), list):
                    state.load.asked[_last_user(body["messages"])] += 1
            if delay := float(request.headers.get("x-sim-delay", "0") or 0) or state.load.latency:
                await asyncio.sleep(delay)
            if status := int(request.headers.get("x-sim-status", "0") or 0) or state.load.outage():
                return error_response(status, f"simulated upstream error {status}")
            if raw and body is None:
                return error_response(400, "We could not parse the JSON body of your request.")
            if flag(request, "x-sim-bad-json") and not (isinstance(body, dict) and body.get("stream")):
                return Response(b"<html>not json{", media_type="application/json")
            response = await handler(request, body)
            for name, value in orjson.loads(request.headers.get("x-sim-response-headers", "{}")).items():
                response.headers.append(name, value)  # e.g. the upstream's own x-request-id, a CDN's x-cache
            return response

        return run

    async def chat(request: Request, body: Any) -> Response:
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            param = "model" if not isinstance(body, dict) or not body.get("model") else "messages"
            return error_response(400, f"Missing required parameter: '{param}'.", param)
        if flag(request, "x-sim-reject-stream-options") and "stream_options" in body:
            return error_response(400, "Unrecognized request argument supplied: stream_options", "stream_options")
        if raw := request.headers.get("x-sim-raw-sse"):  # these bytes, exactly, as the event stream
            size = int(request.headers.get("x-sim-chunk-size", "0") or 0) or len(raw)
            data = base64.b64decode(raw)
            chunks = [data[i:i + size] for i in range(0, len(data), size)]
            return StreamingResponse(_raw(chunks), media_type="text/event-stream")
        if raw := request.headers.get("x-sim-raw-json"):  # this plain answer, exactly
            return Response(base64.b64decode(raw), media_type="application/json")
        profile = profile_for(body["model"])
        if profile is not None:
            return await profiled_chat(request, body, profile, state.cache)
        call_no, messages, n = state.chat_calls, body["messages"], int(body.get("n") or 1)
        user = _last_user(messages)
        prompt_tokens = count_tokens(" ".join(text_of(m.get("content")) for m in messages))
        key = orjson.dumps(messages, option=orjson.OPT_SORT_KEYS)
        cached = 1024 * (prompt_tokens // 1024) if key in state.seen_prompts else 0
        state.seen_prompts.add(key)
        cached = int(request.headers.get("x-sim-cached-tokens", cached))
        tools = body.get("tools") if flag(request, "x-sim-tool-call") else None
        tool = tools[0]["function"]["name"] if tools else None
        finish = None if flag(request, "x-sim-no-finish") else ("tool_calls" if tool else "stop")
        if tool:
            texts = [orjson.dumps({"text": user, "choice": i}).decode() for i in range(n)]
        else:
            texts = [state.load.tagged(f"[{call_no}{f'#{i}' if i else ''}] You said: {user}",
                                       request.headers.get("authorization", "")) for i in range(n)]
        completion_tokens = sum(count_tokens(t) for t in texts)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": cached}}
        head = {"id": f"chatcmpl-sim-{call_no}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": FINGERPRINT}
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            events = chat_events(call_no, head, texts, tool, finish, usage if include_usage else None)
            return stream_response(request, events, state.stream_abandoned)
        choices = []
        for i, text in enumerate(texts):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else text, "refusal": None}
            if tool:
                call = {"id": f"call_sim_{call_no}_{i}", "type": "function"}
                message["tool_calls"] = [{**call, "function": {"name": tool, "arguments": text}}]
            choices.append({"index": i, "message": message, "logprobs": None, "finish_reason": finish})
        return json_response({**head, "choices": choices, "usage": usage})

    async def completions(request: Request, body: Any) -> Response:
        if not isinstance(body, dict) or not body.get("model") or body.get("prompt") is None:
            return error_response(400, "Missing required parameter: 'model' or 'prompt'.")
        prompt = body["prompt"] if isinstance(body["prompt"], str) else " ".join(map(str, body["prompt"]))
        call_no = state.calls["/v1/completions"]
        text = f"[{call_no}] You said: {prompt}"
        finish = None if flag(request, "x-sim-no-finish") else "stop"
        head = {"id": f"cmpl-sim-{call_no}", "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": FINGERPRINT}

        def choice(piece: str, reason: str | None) -> dict[str, Any]:
            return {**head, "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": reason}]}

        if body.get("stream"):
            tail = [choice("", finish)] if finish else []
            return stream_response(request, iter([choice(w, None) for w in words(text)] + tail))
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(text),
                 "total_tokens": count_tokens(prompt) + count_tokens(text)}
        return json_response({**choice(text, finish), "usage": usage})

    async def embeddings(request: Request, body: Any) -> Response:
        if not isinstance(body, dict) or not body.get("model") or body.get("input") is None:
            return error_response(400, "Missing required parameter: 'model' or 'input'.")
        inputs = body["input"]
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]  # a single string or a single token array
        dims = int(body.get("dimensions") or 16)
        data = []
        for i, item in enumerate(inputs):
            vec = fake_vector(item if isinstance(item, str) else orjson.dumps(item).decode(), dims)
            # The openai SDK asks for base64 by default: little-endian float32, like the real API.
            emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if body.get(
                "encoding_format") == "base64" else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(count_tokens(str(item)) for item in inputs)
        return json_response({"object": "list", "data": data, "model": body["model"],
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def models(request: Request, body: Any) -> Response:
        if catalog == "profiles":
            return json_response({"object": "list", "data": profile_catalog()})
        ids = ["sim-model", "gpt-4o-mini", "text-embedding-3-small"]
        return json_response({"object": "list", "data": [
            {"id": i, "object": "model", "created": 1700000000, "owned_by": "cachegate-sim"} for i in ids]})

    async def model(request: Request, body: Any) -> Response:
        # GET /v1/models/{id}: ids may hold a "/" (OpenRouter's "openai/gpt-4o"), which the SDK sends as %2F
        return json_response({"id": request.path_params["model"], "object": "model", "created": 1700000000,
                              "owned_by": "cachegate-sim"})

    async def unknown(request: Request, body: Any) -> Response:
        # anything else (an admin route outside /v1, a climb out of it): recorded, then 404
        return error_response(404, f"no route {request.method} {request.url.path}")

    async def bare(request: Request) -> Response:
        # Deliberately touches no state: this is the throughput ceiling the benchmarks compare against.
        return Response(b'{"ok":true}', media_type="application/json")

    async def stats(request: Request) -> Response:
        return json_response(state.stats())

    async def reset(request: Request) -> Response:
        state.reset()
        return json_response({"ok": True})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                change = orjson.loads(await request.body() or b"{}")
                if "set" in change:
                    state.clock.set(float(change["set"]))
                else:
                    state.clock.advance(float(change.get("advance", 0)))
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                return error_response(400, 'expected {"advance": seconds} or {"set": seconds}')
        return json_response({"now": state.clock.now()})

    async def truth(request: Request) -> Response:
        model = request.query_params.get("model")
        return json_response([t for t in state.cache.truth if model is None or t["model"] == model])

    app = Starlette(routes=[
        Route("/v1/chat/completions", endpoint(chat), methods=["POST"]),
        Route("/v1/completions", endpoint(completions), methods=["POST"]),
        Route("/v1/embeddings", endpoint(embeddings), methods=["POST"]),
        Route("/v1/models", endpoint(models), methods=["GET"]),
        Route("/bare", bare, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        *load_routes(state.load),
        Route("/_clock", clock, methods=["GET", "POST"]),
        Route("/_truth", truth, methods=["GET"]),
        Route("/v1/models/{model:path}", endpoint(model), methods=["GET"]),
        Route("/{rest:path}", endpoint(unknown), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ], middleware=[Middleware(QuietAbort), Middleware(RecordTargets, state=state)])
    return app, state


def _last_user(messages: list[Any]) -> str:
    return next((text_of(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")


class RecordTargets:
    """Pure ASGI: notes each request's target exactly as it arrived (``raw_path``: nothing decoded or
    normalised), so tests can tell what an upstream really received."""

    def __init__(self, app: Any, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            target = scope.get("raw_path") or scope["path"].encode()
            self.state.targets.append((target + (b"?" + query if query else b"")).decode("latin-1"))
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="OpenAI-compatible upstream simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every call waits before it answers")
    parser.add_argument("--echo-key", action="store_true", help="answers name the caller's key (sim_load.key_tag)")
    opts = parser.parse_args(argv)
    app, _ = create_simulator(latency=opts.latency, echo_key=opts.echo_key)
    # The fastest stack available, since benchmarks must not be limited by the upstream.
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(app, host=opts.host, port=opts.port, loop=loop, http=http, access_log=False,
                log_level="warning")


if __name__ == "__main__":
    main()
