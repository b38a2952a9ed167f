"""Server-sent events for chat completions: parse, assemble into one completion, replay. Pure: no I/O.

The parser is incremental (bytes arrive in arbitrary pieces); the assembler folds
``chat.completion.chunk`` events into the ``chat.completion`` a plain request would have got; ``replay``
does the reverse so one cache entry serves both forms.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.core.usage import usage_in

DONE = "[DONE]"


class SSEParser:
    """Incremental SSE parser: :meth:`feed` bytes, get the ``data`` payload of each complete event."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        events: list[str] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                return events
            line = self._buffer[:end].rstrip(b"\r").decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + 1:]
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
            elif line.startswith("data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(" ") else value)
            # comments (":") and other fields (event, id, retry) carry nothing we need

    @property
    def pending(self) -> bool:
        """Bytes or data lines that did not form a complete event (a cut-off stream)."""
        return bool(self._buffer.strip() or self._data)


@dataclass
class _Choice:
    role: str | None = None
    content: list[str] | None = None
    refusal: list[str] | None = None
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    logprobs: list[Any] | None = None
    finish_reason: str | None = None


class StreamAssembler:
    """Folds parsed ``chat.completion.chunk`` payloads into one ``chat.completion``."""

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self._head: dict[str, Any] = {}
        self._usage: Any = None
        self._choices: dict[int, _Choice] = {}

    def add(self, data: str) -> Any:
        """Fold in one event's data; returns the parsed chunk (``None`` for ``[DONE]`` or garbage)."""
        if data.strip() == DONE:
            self.done = True
            return None
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.failed = True
            return None
        if not isinstance(chunk, dict) or "error" in chunk:
            self.failed = True
            return chunk
        for name in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(name) is not None:
                self._head[name] = chunk[name]
        usage = usage_in(chunk)  # Moonshot streams carry it in choices[0].usage
        if usage is not None:
            self._usage = usage
        for raw in chunk.get("choices") or []:
            self._add_choice(raw)
        return chunk

    def _add_choice(self, raw: Mapping[str, Any]) -> None:
        choice = self._choices.setdefault(int(raw.get("index", 0)), _Choice())
        delta = raw.get("delta") or {}
        if delta.get("role"):
            choice.role = delta["role"]
        if delta.get("content") is not None:  # null content (tool calls, refusals) stays null
            choice.content = choice.content or []
            if delta["content"]:
                choice.content.append(delta["content"])
        if delta.get("refusal") is not None:
            choice.refusal = (choice.refusal or []) + [delta["refusal"]]
        for call in delta.get("tool_calls") or []:
            slot = choice.tool_calls.setdefault(int(call.get("index", 0)),
                                                {"id": None, "type": "function",
                                                 "function": {"name": "", "arguments": ""}})
            if call.get("id"):
                slot["id"] = call["id"]
            if call.get("type"):
                slot["type"] = call["type"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
        logprobs = raw.get("logprobs")
        if isinstance(logprobs, dict) and logprobs.get("content") is not None:
            choice.logprobs = (choice.logprobs or []) + list(logprobs["content"])
        if raw.get("finish_reason"):
            choice.finish_reason = raw["finish_reason"]

    def result(self) -> dict[str, Any] | None:
        """The assembled completion, or ``None`` unless the stream ended intact and every choice finished."""
        if not self.done or self.failed or not self._choices:
            return None
        if any(choice.finish_reason is None for choice in self._choices.values()):
            return None
        completion: dict[str, Any] = {"id": self._head.get("id"), "object": "chat.completion",
                                      "created": self._head.get("created"), "model": self._head.get("model")}
        completion["choices"] = [self._render(index, choice) for index, choice in sorted(self._choices.items())]
        if self._usage is not None:
            completion["usage"] = self._usage
        for name in ("system_fingerprint", "service_tier"):
            if name in self._head:
                completion[name] = self._head[name]
        return completion

    @staticmethod
    def _render(index: int, choice: _Choice) -> dict[str, Any]:
        message: dict[str, Any] = {"role": choice.role or "assistant",
                                   "content": None if choice.content is None else "".join(choice.content)}
        if choice.refusal is not None:
            message["refusal"] = "".join(choice.refusal)
        if choice.tool_calls:
            message["tool_calls"] = [call for _, call in sorted(choice.tool_calls.items())]
        logprobs = {"content": choice.logprobs} if choice.logprobs is not None else None
        return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": choice.finish_reason}


def is_usage_only(chunk: Any) -> bool:
    """The final ``include_usage`` event: no choices, only usage."""
    return isinstance(chunk, dict) and not chunk.get("choices") and chunk.get("usage") is not None


def encode_event(payload: Mapping[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"data: {data}\n\n".encode()


def replay(completion: Mapping[str, Any], *, include_usage: bool) -> Iterator[bytes]:
    """SSE frames that a streaming client would have received for ``completion``."""
    head: dict[str, Any] = {"id": completion.get("id"), "object": "chat.completion.chunk",
                            "created": completion.get("created"), "model": completion.get("model")}
    for name in ("system_fingerprint", "service_tier"):
        if name in completion:
            head[name] = completion[name]
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None,
              logprobs: Any = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        return encode_event({**head, "choices": [choice]})

    for choice in completion.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        content = message.get("content")
        yield chunk(index, {"role": message.get("role", "assistant"),
                            "content": "" if content is not None else None})
        if content:
            yield chunk(index, {"content": content}, logprobs=choice.get("logprobs"))
        if message.get("refusal"):
            yield chunk(index, {"refusal": message["refusal"]})
        calls = message.get("tool_calls") or []
        if calls:
            yield chunk(index, {"tool_calls": [{"index": i, **call} for i, call in enumerate(calls)]})
        yield chunk(index, {}, finish_reason=choice.get("finish_reason"))
    if include_usage:
        yield encode_event({**head, "choices": [], "usage": completion.get("usage")})
    yield encode_event(DONE)
