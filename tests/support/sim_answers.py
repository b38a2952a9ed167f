"""The OpenAI endpoints of the upstream simulator: the answer each builds from a request and the faults
its ``x-sim-*`` headers ask for.

Chat answers are deterministic but reveal the call number (``[3] You said: hi``) so a test can tell a fresh
upstream answer from a cached replay; a model with a prompt-cache profile is answered by
:mod:`tests.support.sim_profiled` instead. The server in :mod:`tests.support.simulator` records each call and
applies the faults every endpoint shares before a method here runs; the wire format (bodies, event streams) is
:mod:`tests.support.sim_wire`.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.support.cache_profiles import catalog as profile_catalog
from tests.support.cache_profiles import profile_for
from tests.support.sim_profiled import profiled_chat
from tests.support.sim_state import SimState
from tests.support.sim_wire import (
    FINGERPRINT,
    chat_events,
    count_tokens,
    error_response,
    fake_vector,
    flag,
    json_response,
    last_user,
    stream_response,
    text_of,
    words,
)


class SimAnswers:
    """The handlers behind ``/v1/*``, each ``(request, parsed JSON body or None) -> Response``; ``catalog``:
    ``"profiles"`` lists the prompt-cache profiles' models at ``/v1/models``, else the default three."""

    def __init__(self, state: SimState, *, catalog: str = "default") -> None:
        self.state = state
        self.catalog = catalog

    async def chat(self, request: Request, body: Any) -> Response:
        state = self.state
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
        user = last_user(messages)
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

    async def completions(self, request: Request, body: Any) -> Response:
        if not isinstance(body, dict) or not body.get("model") or body.get("prompt") is None:
            return error_response(400, "Missing required parameter: 'model' or 'prompt'.")
        prompt = body["prompt"] if isinstance(body["prompt"], str) else " ".join(map(str, body["prompt"]))
        call_no = self.state.calls["/v1/completions"]
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

    async def embeddings(self, request: Request, body: Any) -> Response:
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

    async def models(self, request: Request, body: Any) -> Response:
        if self.catalog == "profiles":
            return json_response({"object": "list", "data": profile_catalog()})
        ids = ["sim-model", "gpt-4o-mini", "text-embedding-3-small"]
        return json_response({"object": "list", "data": [
            {"id": i, "object": "model", "created": 1700000000, "owned_by": "cachegate-sim"} for i in ids]})

    async def model(self, request: Request, body: Any) -> Response:
        # GET /v1/models/{id}: ids may hold a "/" (OpenRouter's "openai/gpt-4o"), which the SDK sends as %2F
        return json_response({"id": request.path_params["model"], "object": "model", "created": 1700000000,
                              "owned_by": "cachegate-sim"})

    async def unknown(self, request: Request, body: Any) -> Response:
        # anything else (an admin route outside /v1, a climb out of it): recorded, then 404
        return error_response(404, f"no route {request.method} {request.url.path}")


async def _raw(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0)
