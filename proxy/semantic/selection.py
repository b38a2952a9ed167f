"""Choosing the candidate that may answer: the best match above the threshold that is alive, not blocked by
feedback, and accepted by every guard (:mod:`proxy.semantic.guards`). Pure: no I/O."""

from __future__ import annotations

import base64
import logging
from collections import Counter
from collections.abc import Sequence

from proxy.cache.entry import CachedResponse, EntryFormatError
from proxy.contracts import SemanticMatch
from proxy.semantic import guards
from proxy.semantic.prompts import block_key, clip, text_hash

logger = logging.getLogger("cachegate.semantic")


class Selector:
    def __init__(self, *, threshold: float, substitution_similarity: float, blocks: set[str],
                 stats: Counter[str], checks: tuple[str, ...] = guards.GUARDS) -> None:
        self.threshold = threshold
        self.checks = checks  # with the verifier behind, only the cheap guards it is weakest at stay here
        self.substitution_similarity = substitution_similarity
        self.blocks = blocks  # pairs feedback said must never match again (shared with the feedback book)
        self.stats = stats

    def choose(self, matches: Sequence[SemanticMatch], text: str,
               now: float) -> tuple[SemanticMatch, CachedResponse] | None:
        asked = text_hash(text)
        for match in matches:  # best first
            if match.score < self.threshold:
                return None
            payload = match.payload
            stored_text = payload.get("text")
            if not isinstance(stored_text, str) or float(payload.get("expires_at", 0)) <= now:
                continue
            if block_key(str(payload.get("scope", "")), asked, str(payload.get("text_hash", ""))) in self.blocks:
                self.stats["refused_feedback"] += 1
                continue
            refused = guards.refusal(stored_text, text, match.score, self.checks,
                                     substitution_similarity=self.substitution_similarity)
            if refused is not None:
                self.stats[f"refused_{refused}"] += 1
                logger.debug("guard %s refused %r for %r (similarity %.4f)", refused, clip(stored_text),
                             clip(text), match.score)
                continue
            entry = decode_entry(payload.get("entry"))
            if entry is None or entry.expired(now) or calls_tools(entry):
                continue  # a tool call built for one wording is not an answer to another
            return match, entry
        return None


def calls_tools(entry: CachedResponse) -> bool:
    """The answer calls a tool (or a legacy function): never given to another wording."""
    choices = entry.completion.get("choices")
    return isinstance(choices, list) and any(
        isinstance(choice, dict) and isinstance(choice.get("message"), dict)
        and (choice["message"].get("tool_calls") or choice["message"].get("function_call")) for choice in choices)


def encode_entry(entry: CachedResponse) -> str:
    return base64.b64encode(entry.encode()).decode("ascii")


def decode_entry(raw: object) -> CachedResponse | None:
    if not isinstance(raw, str):
        return None
    try:
        return CachedResponse.decode(base64.b64decode(raw))
    except (EntryFormatError, ValueError):
        return None
