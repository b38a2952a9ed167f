"""Folding ``chat.completion.chunk`` events into the ``chat.completion`` a plain request gets. Pure: no I/O.

The assembler observes a copy of a stream the client is already being sent, so it never raises: a chunk
it cannot fold faithfully (:mod:`~proxy.core.folding` has the rules) makes it give up,
:attr:`StreamAssembler.reason` says why, and the answer is not stored. A cache is only good if it is
never wrong, so it gives up rather than guess.

Every field of the message is kept, known or not (legacy ``function_call``, ``reasoning_content`` /
``reasoning``, ``annotations``, ``audio``, ``refusal``, ``tool_calls``). Outside ``delta``: ``logprobs``
token lists concatenate; ``id``, ``model``, ``created``, ``system_fingerprint``, ``service_tier`` and
``usage`` take the last value sent; any other key of a choice or of the chunk must repeat what it said.
A choice without an ``index`` (or ``null``) is choice 0, as a stream of one choice means; a tool call
without an integer ``index`` cannot be placed, so the answer is not stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.core.eventstream import DONE, Event
from proxy.core.folding import ABSENT, Unfoldable, fold_delta, fold_same, plain

_HEAD = ("id", "created", "model", "system_fingerprint", "service_tier")
#: What the message fields cachegate knows hold; another type is a provider doing something it does not
#: understand, so the answer is not stored.
_MESSAGE_TYPES: dict[str, type | tuple[type, ...]] = {
    "role": str, "content": (str, list), "refusal": str, "reasoning_content": str, "reasoning": str,
    "tool_calls": list, "function_call": dict, "audio": dict, "annotations": list,
}


@dataclass
class _Choice:
    message: dict[str, Any] = field(default_factory=dict)
    logprobs: Any = None
    finish_reason: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def _check_types(delta: Any, where: str) -> None:
    if delta is None:
        return
    if not isinstance(delta, dict):
        raise Unfoldable(f"{where} is not an object")
    for name, value in delta.items():
        expected = _MESSAGE_TYPES.get(name)
        if expected is not None and value is not None and not isinstance(value, expected):
            kinds = expected if isinstance(expected, tuple) else (expected,)
            raise Unfoldable(f"{where}.{name} is {type(value).__name__}, not "
                             + " or ".join(kind.__name__ for kind in kinds))


class StreamAssembler:
    """Folds parsed ``chat.completion.chunk`` payloads into one ``chat.completion``."""

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self.errored = False  # the stream carried an error event: the client did not get an answer either
        self._reason: str | None = None
        self._head: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}
        self._usage: Any = None
        self._choices: dict[int, _Choice] = {}

    def add(self, data: str) -> Any:
        """Fold in one event's data; returns the parsed chunk (``None`` for ``[DONE]`` or garbage)."""
        try:
            return self._add(data)
        except Exception as exc:  # a flaw here must cost the cache entry, never the client's stream
            self._fail(f"unexpected {type(exc).__name__}: {exc}")
            return None

    def add_event(self, event: Event) -> Any:
        return self.add(event.data)

    def _fail(self, reason: str) -> None:
        if not self.failed:
            self.failed, self._reason = True, reason

    def _add(self, data: str) -> Any:
        if data.strip() == DONE:
            self.done = True
            return None
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._fail("an event's data is not JSON")
            return None
        if not isinstance(chunk, dict):
            self._fail("an event's data is not a JSON object")
            return chunk
        if chunk.get("error") is not None:
            self.errored = True
            self._fail("the stream carried an error")
            return chunk
        if not self.failed:
            try:
                self._fold(chunk)
            except Unfoldable as exc:
                self._fail(str(exc))
        return chunk

    def _fold(self, chunk: dict[str, Any]) -> None:
        for key, value in chunk.items():
            if key == "choices":
                if value is None:
                    continue
                if not isinstance(value, list):
                    raise Unfoldable("choices is not a list")
                for raw in value:
                    self._fold_choice(raw)
            elif key == "usage":
                if value is not None:
                    self._usage = value
            elif key in _HEAD:
                if value is not None:
                    self._head[key] = value
            elif key != "object":
                self._extra[key] = fold_same(self._extra.get(key, ABSENT), value, key)

    def _fold_choice(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise Unfoldable("a choice is not an object")
        index = raw.get("index")
        if index is None:
            index = 0
        elif type(index) is not int or index < 0:
            raise Unfoldable(f"choice index {index!r} is not a whole number")
        choice = self._choices.setdefault(index, _Choice())
        where = f"choices[{index}]"
        for key, value in raw.items():
            if key == "index":
                continue
            if key == "delta":
                _check_types(value, f"{where}.delta")
                choice.message = fold_delta(choice.message, value, None, f"{where}.delta", 0)
            elif key == "logprobs":
                choice.logprobs = self._fold_logprobs(choice.logprobs, value, f"{where}.logprobs")
            elif key == "finish_reason":
                choice.finish_reason = fold_same(choice.finish_reason, value, f"{where}.finish_reason")
            elif key == "usage" and isinstance(value, dict):
                self._usage = value  # Moonshot streams send usage inside the last choice: the answer's usage
            else:
                choice.extra[key] = fold_same(choice.extra.get(key, ABSENT), value, f"{where}.{key}")

    @staticmethod
    def _fold_logprobs(old: Any, new: Any, where: str) -> Any:
        """Token lists (``content``, ``refusal``) concatenate; anything else must repeat."""
        if new is None:
            return old
        if not isinstance(new, dict) or (old is not None and not isinstance(old, dict)):
            raise Unfoldable(f"{where} is not an object")
        merged = dict(old or {})
        for key, value in new.items():
            before = merged.get(key)
            if isinstance(value, list) and (before is None or isinstance(before, list)):
                merged[key] = [*(before or []), *value]
            else:
                merged[key] = fold_same(merged.get(key, ABSENT), value, f"{where}.{key}")
        return merged

    @property
    def reason(self) -> str | None:
        """Why :meth:`result` is ``None`` (``None`` when it is not)."""
        return self.outcome()[1]

    def result(self) -> dict[str, Any] | None:
        """The assembled completion, or ``None`` unless the stream ended intact and every choice finished."""
        return self.outcome()[0]

    def outcome(self) -> tuple[dict[str, Any] | None, str | None]:
        """The completion and ``None``, or ``None`` and why nothing may be stored."""
        if self.failed:
            return None, self._reason
        if not self.done:
            return None, "the stream did not end with [DONE]"
        if not self._choices:
            return None, "the stream had no choices"
        unfinished = [index for index, choice in sorted(self._choices.items()) if choice.finish_reason is None]
        if unfinished:
            return None, f"choice {unfinished[0]} has no finish_reason"
        completion: dict[str, Any] = {"id": self._head.get("id"), "object": "chat.completion",
                                      "created": self._head.get("created"), "model": self._head.get("model")}
        completion["choices"] = [self._render(index, choice) for index, choice in sorted(self._choices.items())]
        if self._usage is not None:
            completion["usage"] = self._usage
        for name in ("system_fingerprint", "service_tier"):
            if name in self._head:
                completion[name] = self._head[name]
        completion.update(self._extra)
        return completion, None

    @staticmethod
    def _render(index: int, choice: _Choice) -> dict[str, Any]:
        folded = plain(choice.message)
        message = {"role": folded.pop("role", None) or "assistant", "content": folded.pop("content", None),
                   **folded}
        return {"index": index, "message": message, "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason, **choice.extra}


def is_usage_only(chunk: Any) -> bool:
    """The final ``include_usage`` event: no choices, only usage."""
    return isinstance(chunk, dict) and not chunk.get("choices") and chunk.get("usage") is not None


def is_usage_only_event(event: Event) -> bool:
    """:func:`is_usage_only` for an event not yet parsed; cheap for the events that are not it."""
    if '"usage"' not in event.data:
        return False
    try:
        return is_usage_only(orjson.loads(event.data))
    except orjson.JSONDecodeError:
        return False
