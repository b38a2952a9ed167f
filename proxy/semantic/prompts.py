"""Which text of a request the semantic tier embeds, and the ids derived from it. Pure: no I/O."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from proxy.core.canonical import last_user_text

#: Characters above which a prompt is certainly longer than the model's window (no token is longer than
#: this many characters on average), so it is skipped without tokenising it.
MAX_CHARS_PER_TOKEN = 24


def fits_window(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> bool:
    """Whether the model reads all of ``text`` (at most ``max_tokens`` wordpieces with [CLS] and [SEP]),
    calling ``count_tokens`` (a tokenizer run, ~0.1 ms on the event loop) only when the length cannot tell:
    every wordpiece of ASCII text covers at least one character, so ``len + 2`` bounds its count. Beyond
    ASCII it does not (Hangul syllables split into jamo: 4 characters, 10 tokens)."""
    if len(text) > max_tokens * MAX_CHARS_PER_TOKEN:
        return False
    if text.isascii() and len(text) + 2 <= max_tokens:
        return True
    return count_tokens(text) <= max_tokens


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def point_id(scope: str, text: str) -> str:
    """One point per (scope, prompt): asking the same prompt again overwrites instead of duplicating."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cachegate:{scope}:{text_hash(text)}"))


def block_key(scope: str, first: str, second: str) -> str:
    """The key of a pair of prompt hashes that must never match again in ``scope`` (order-free)."""
    low, high = sorted((first, second))
    return hashlib.sha256(f"{scope}:{low}:{high}".encode()).hexdigest()[:40]


def semantic_text(body: Mapping[str, Any]) -> str | None:
    """The text the tier embeds — the last user turn — or ``None`` when the request must skip the tier:
    it declares tools or functions (a tool call built for one wording is not an answer to another), the
    conversation carries tool calls or tool results, the last turn is not the user's, or the user's turn
    holds anything but text (images, audio, files)."""
    if body.get("tools") or body.get("functions"):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    for message in messages:
        if not isinstance(message, dict):
            return None
        if message.get("role") in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            return None
    if messages[-1].get("role") != "user":
        return None
    text = last_user_text(body)
    if text is None or not text.strip():
        return None
    return text


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
