"""An in-memory :class:`~proxy.contracts.Upstream` for fast unit tests of the chat pipeline (the idea of
httpx's ``MockTransport``): a handler gets each call and says what to answer; every call is recorded.

Integration tests use the simulator over real HTTP instead; this is for the pipeline's own decisions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.contracts import UpstreamResponse


@dataclass
class Call:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: Any  # the JSON the upstream received


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("content-type", "application/json")])
    chunks: Sequence[bytes] = ()
    gate: asyncio.Event | None = None  # the body waits for it (to hold a leader mid-answer)

    async def body(self) -> AsyncGenerator[bytes, None]:
        if self.gate is not None:
            await self.gate.wait()
        for chunk in self.chunks:
            yield chunk


def completion(content: str, *, model: str = "m", usage: tuple[int, int] = (5, 3)) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


def plain(payload: Any, status: int = 200) -> Reply:
    return Reply(status, chunks=[orjson.dumps(payload)])


def events(*payloads: Any) -> Reply:
    chunks = [b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads]
    return Reply(200, [("content-type", "text/event-stream")], chunks)


class MemoryUpstream:
    base_url = "http://upstream.test/v1"

    def __init__(self, handler: Callable[[Call], Reply]) -> None:
        self.handler = handler
        self.calls: list[Call] = []
        self.closed: list[bool] = []  # one entry per response released (as aiohttp's release())

    async def send(self, method: str, path: str, *, headers: Sequence[tuple[str, str]],
                   content: bytes | AsyncIterator[bytes] | None, params: str = "") -> UpstreamResponse:
        assert isinstance(content, bytes)
        call = Call(method, path, list(headers), orjson.loads(content))
        self.calls.append(call)
        reply = self.handler(call)

        async def release() -> None:
            self.closed.append(True)

        return UpstreamResponse(reply.status, list(reply.headers), reply.body(), release)

    async def aclose(self) -> None:
        return None
