"""Wire format of the upstream simulator: OpenAI-shaped bodies, SSE chunking and the stream faults.

Pure helpers, kept apart from the server in :mod:`tests.support.simulator` and the endpoints in
:mod:`tests.support.sim_answers` so each stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

FINGERPRINT = "fp_sim"
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error"}


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(status: int, message: str, param: str | None = None) -> Response:
    err_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return json_response({"error": {"message": message, "type": err_type, "param": param, "code": None}}, status)


def count_tokens(text: str) -> int:
    # Crude but deterministic, so tests can assert exact usage numbers.
    return len(text.split()) * 4 // 3 + 1


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_user(messages: list[Any]) -> str:
    return next((text_of(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")


def words(text: str) -> list[str]:
    # Split after each space so the pieces concatenate back to exactly the text.
    return [w for w in re.split(r"(?<= )", text) if w] or [""]


def pieces(text: str, size: int = 8) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def flag(request: Request, name: str) -> bool:
    return request.headers.get(name, "").lower() in ("1", "true", "yes")


def fake_vector(text: str, dims: int) -> list[float]:
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    raw = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


class CutAbort(Exception):
    """Raised mid-stream for ``x-sim-cut-abort``; swallowed by :class:`QuietAbort`."""


class QuietAbort:
    # Returning with the body unfinished makes uvicorn close the socket (one log line), which is what a
    # crashed upstream looks like; letting the exception through would also log a full traceback.
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(CutAbort):
            await self.app(scope, receive, send)


def stream_response(request: Request, events: Iterator[Any],
                    on_abandoned: Callable[[], None] = lambda: None) -> StreamingResponse:
    """``on_abandoned`` is called when the client goes away before the stream is over."""
    cut = int(request.headers.get("x-sim-cut-after", "-1") or -1)
    abort = flag(request, "x-sim-cut-abort")
    chunk_delay = float(request.headers.get("x-sim-chunk-delay", "0") or 0)

    async def body() -> AsyncIterator[bytes]:
        try:
            for sent, event in enumerate(events):
                if sent == cut:
                    break
                if sent and chunk_delay:
                    await asyncio.sleep(chunk_delay)
                yield sse(event)
        except (GeneratorExit, asyncio.CancelledError):
            on_abandoned()
            raise
        if cut < 0:
            yield b"data: [DONE]\n\n"
        elif abort:
            raise CutAbort
        # else: the body just ends, cleanly but without [DONE]

    return StreamingResponse(body(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


def chat_events(call_no: int, head: dict[str, Any], texts: list[str], tool: str | None,
                finish: str | None, usage: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """Chunks of a streamed chat answer; ``texts`` are the contents, or the tool arguments if ``tool``."""

    def chunk(i: int | None, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        choices = [] if i is None else [{"index": i, "delta": delta, "logprobs": None, "finish_reason": reason}]
        out = {**head, "object": "chat.completion.chunk", "choices": choices}
        return out if usage is None else {**out, "usage": None}  # OpenAI: usage: null unless final

    for i in range(len(texts)):
        first: dict[str, Any] = {"role": "assistant", "content": None if tool else "", "refusal": None}
        if tool:
            call = {"index": 0, "id": f"call_sim_{call_no}_{i}", "type": "function"}
            first["tool_calls"] = [{**call, "function": {"name": tool, "arguments": ""}}]
        yield chunk(i, first)
    # Round-robin over choices, as OpenAI interleaves them, so clients must honour `index`.
    split = [pieces(t) if tool else words(t) for t in texts]
    for step in range(max(len(s) for s in split)):
        for i, parts in enumerate(split):
            if step < len(parts):
                args = {"tool_calls": [{"index": 0, "function": {"arguments": parts[step]}}]}
                yield chunk(i, args if tool else {"content": parts[step]})
    for i in range(len(texts) if finish else 0):
        yield chunk(i, {}, finish)
    if usage is not None:
        yield {**chunk(None, {}), "usage": usage}
