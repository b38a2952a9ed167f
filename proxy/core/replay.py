"""A stored ``chat.completion`` played back as the stream a streaming client would have received. Pure: no I/O.

Every field is replayed, known or not, so that folding the replay (:mod:`proxy.core.assembly`) gives the
completion back: per choice, an opening chunk with the role, ``content`` ``""`` (``null`` when it is not
a string) and every message field that is ``null``; then one chunk per other field, each whole
(reasoning first, then the content, which carries the choice's ``logprobs``, then the rest in the
message's order, ``tool_calls`` given their ``index``); then a chunk with the ``finish_reason`` and the
choice's other keys. Unknown top-level keys ride on the first chunk; with ``include_usage`` every chunk
says ``"usage": null`` and a last one, without choices, carries the usage. What cannot come back: the
``index`` inside a stored ``tool_calls`` entry (a stream uses it to place the entry), a ``usage`` that
is ``null``, and a message without ``role`` or ``content`` (they come back as ``assistant`` and
``null``, as a plain answer has them).

A cached answer is given a fresh ``id`` and ``created`` (every response its own id; the caller keeps
the stored one for ``x-cache-original-id``): :func:`replay` takes them, and :func:`refresh_identity`
rewrites them in a stored plain body without touching its other bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from proxy.core.eventstream import DONE, encode_event

_HEAD = ("id", "object", "created", "model", "system_fingerprint", "service_tier", "choices", "usage")
_REASONING = ("reasoning_content", "reasoning")
_CHOICE = ("index", "message", "logprobs", "finish_reason", "delta")


def replay(completion: Mapping[str, Any], *, include_usage: bool, completion_id: str | None = None,
           created: int | None = None) -> Iterator[bytes]:
    """SSE frames that a streaming client would have received for ``completion`` (with ``completion_id``
    and ``created`` in place of the stored ones when given)."""
    head: dict[str, Any] = {"id": completion.get("id") if completion_id is None else completion_id,
                            "object": "chat.completion.chunk",
                            "created": completion.get("created") if created is None else created,
                            "model": completion.get("model")}
    for name in ("system_fingerprint", "service_tier"):
        if name in completion:
            head[name] = completion[name]
    if include_usage:
        head["usage"] = None
    extra = {key: value for key, value in completion.items() if key not in _HEAD}

    first = True
    choices = completion.get("choices")
    for position, choice in enumerate(choices if isinstance(choices, list) else []):
        if not isinstance(choice, Mapping):
            continue
        for frame in _choice_frames(choice, position):
            yield encode_event({**head, **(extra if first else {}), "choices": [frame]})
            first = False
    if include_usage:
        yield encode_event({**head, "choices": [], "usage": completion.get("usage")})
    yield encode_event(DONE)


def _choice_frames(choice: Mapping[str, Any], position: int) -> Iterator[dict[str, Any]]:
    index = choice.get("index")
    index = index if type(index) is int else position
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    logprobs = choice.get("logprobs")

    def frame(delta: dict[str, Any], *, with_logprobs: bool = False, finish_reason: Any = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": logprobs if with_logprobs else None,
                "finish_reason": finish_reason}

    content = message.get("content")
    has_content = content is not None and content != ""
    opening: dict[str, Any] = {"role": message.get("role", "assistant"),
                               "content": "" if isinstance(content, str) else None}
    opening.update({key: None for key, value in message.items() if value is None and key not in opening})
    yield frame(opening, with_logprobs=not has_content)
    for key in _REASONING:
        if message.get(key) is not None:
            yield frame({key: message[key]})
    if has_content:
        yield frame({"content": content}, with_logprobs=True)
    for key, value in message.items():
        if key in ("role", "content", *_REASONING) or value is None:
            continue
        if key == "tool_calls" and isinstance(value, list):
            value = [{**call, "index": i} if isinstance(call, Mapping) else call for i, call in enumerate(value)]
        yield frame({key: value})
    yield {**frame({}, finish_reason=choice.get("finish_reason")),
           **{key: value for key, value in choice.items() if key not in _CHOICE}}


# -- a fresh identity for a stored plain body ------------------------------------------------------------

_SPACE = re.compile(rb"[ \t\r\n]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SCALAR = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null")
_STRUCTURE = re.compile(rb'["{}\[\]]')
_NUMBER_START = frozenset(b"-0123456789")


def _skip_value(body: bytes, at: int) -> int:
    """Where the JSON value starting at ``at`` ends (``-1`` if it is not one)."""
    for pattern in (_STRING, _SCALAR):
        match = pattern.match(body, at)
        if match:
            return match.end()
    if body[at:at + 1] not in (b"{", b"["):
        return -1
    depth, position = 0, at
    while (match := _STRUCTURE.search(body, position)) is not None:
        token = match.group()
        if token == b'"':
            string = _STRING.match(body, match.start())
            if string is None:
                return -1
            position = string.end()
            continue
        depth += 1 if token in (b"{", b"[") else -1
        position = match.end()
        if depth == 0:
            return position
    return -1


def _skip_space(body: bytes, at: int) -> int:
    match = _SPACE.match(body, at)
    return match.end() if match else at


def _member_spans(body: bytes, names: tuple[bytes, ...]) -> dict[bytes, tuple[int, int]] | None:
    """Where the values of a JSON object's members ``names`` (encoded, with their quotes) are, first
    occurrence, reading no further than needed; ``None`` if ``body`` is not an object."""
    position = _skip_space(body, 0)
    if body[position:position + 1] != b"{":
        return None
    position = _skip_space(body, position + 1)
    spans: dict[bytes, tuple[int, int]] = {}
    if body[position:position + 1] == b"}":
        return spans
    while len(spans) < len(names):
        name = _STRING.match(body, position)
        if name is None:
            return None
        position = _skip_space(body, name.end())
        if body[position:position + 1] != b":":
            return None
        start = _skip_space(body, position + 1)
        end = _skip_value(body, start)
        if end < 0:
            return None
        if name.group() in names:
            spans.setdefault(name.group(), (start, end))
        position = _skip_space(body, end)
        separator = body[position:position + 1]
        if separator == b"}":
            break
        if separator != b",":
            return None
        position = _skip_space(body, position + 1)
    return spans


def identity_spans(body: bytes) -> tuple[int, int, int, int] | None:
    """Where the top-level ``id`` (a string) and ``created`` (a number; ``-1, -1`` when absent) of a stored
    plain body are, found once so that every hit can rewrite them with two slices (:func:`with_identity`);
    ``None`` when the body is not a JSON object with a string ``id``."""
    spans = _member_spans(body, (b'"id"', b'"created"'))
    if spans is None or b'"id"' not in spans:
        return None
    start, end = spans[b'"id"']
    if body[start:start + 1] != b'"':
        return None
    created = spans.get(b'"created"', (-1, -1))
    if created[0] >= 0 and body[created[0]] not in _NUMBER_START:
        created = (-1, -1)
    return start, end, created[0], created[1]


def with_identity(body: bytes, spans: tuple[int, int, int, int], *, completion_id: str,
                  created: int | None = None) -> bytes:
    """``body`` with the id at ``spans`` (from :func:`identity_spans`) replaced, and ``created`` too when
    given and present; every other byte as stored."""
    start, end, c_start, c_end = spans
    edits = [(start, end, orjson.dumps(completion_id))]
    if created is not None and c_start >= 0:
        edits.append((c_start, c_end, str(int(created)).encode()))
    out, last = [], 0
    for edit_start, edit_end, value in sorted(edits):
        out += [body[last:edit_start], value]
        last = edit_end
    out.append(body[last:])
    return b"".join(out)


def refresh_identity(body: bytes, *, completion_id: str, created: int | None = None) -> tuple[bytes, str | None]:
    """``body`` with its top-level ``id`` (a string) replaced by ``completion_id`` and its ``created``
    (a number) by ``created``, every other byte as stored; and the stored id. A body that is not a JSON
    object with a string ``id`` comes back unchanged, with ``None``."""
    spans = identity_spans(body)
    if spans is None:
        return body, None
    try:
        original = orjson.loads(body[spans[0]:spans[1]])
    except orjson.JSONDecodeError:
        return body, None
    if not isinstance(original, str):
        return body, None
    return with_identity(body, spans, completion_id=completion_id, created=created), original
