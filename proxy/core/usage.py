"""Provider prompt-cache figures from an answer's ``usage``, in whatever shape the provider reports them. Pure.

Cached tokens have three states: a number, 0, or ``None`` when the upstream reports no cache field at
all. ``None`` means *unknown* and is never shown (or summed) as 0 by anything that displays it.

Shapes read (the first one present wins):

- ``prompt_tokens_details.cached_tokens``: OpenAI, Venice, xAI, Zhipu, Groq, Gemini, OpenRouter, vLLM, SGLang;
  tokens written to the cache in ``prompt_tokens_details.cache_creation_input_tokens`` (Venice) or
  ``cache_write_tokens`` (OpenRouter, newer OpenAI);
- ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``: DeepSeek;
- a top-level ``cached_tokens``: Moonshot (whose streams carry the usage inside ``choices[0].usage``, see
  :func:`usage_in`);
- ``cache_read_input_tokens`` / ``cache_creation_input_tokens``: Anthropic style, where ``input_tokens``
  excludes both, so the prompt is their sum. When an OpenAI-compatible ``prompt_tokens`` is present as well
  it already is the whole prompt and is kept as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """The normalised figures of one ``usage`` object; ``None`` is unknown, never 0."""

    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    cache_write_tokens: int | None
    shape: str  # openai | deepseek | moonshot | anthropic | none (no cache field) | absent (no usage)

    @property
    def cache_reported(self) -> bool:
        return self.cached_tokens is not None

    @property
    def cached_ratio(self) -> float | None:
        """Cached share of the prompt, or ``None`` when either figure is unknown."""
        if self.cached_tokens is None or not self.prompt_tokens:
            return None
        return self.cached_tokens / self.prompt_tokens

    def as_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cached_tokens": self.cached_tokens, "cache_write_tokens": self.cache_write_tokens,
                "shape": self.shape}


ABSENT = CacheUsage(None, None, None, None, "absent")


def _count(value: Any) -> int | None:
    """A token count, or ``None`` for anything that is not one (null, a string, a bool, a negative number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _first(source: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        found = _count(source.get(name))
        if found is not None:
            return found
    return None


def normalize_usage(usage: Any) -> CacheUsage:
    """Read ``usage`` (an answer's ``usage`` object, or anything else) into a :class:`CacheUsage`."""
    if not isinstance(usage, Mapping):
        return ABSENT
    prompt = _count(usage.get("prompt_tokens"))
    completion = _first(usage, "completion_tokens", "output_tokens")
    raw_details = usage.get("prompt_tokens_details")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, Mapping) else {}

    cached = _count(details.get("cached_tokens"))
    if cached is not None:
        written = _first(details, "cache_creation_input_tokens", "cache_write_tokens")
        if written is None:
            written = _first(usage, "cache_creation_input_tokens", "cache_write_tokens")
        return CacheUsage(prompt, completion, cached, written, "openai")

    hit = _count(usage.get("prompt_cache_hit_tokens"))
    if hit is not None:
        miss = _count(usage.get("prompt_cache_miss_tokens"))
        if prompt is None and miss is not None:
            prompt = hit + miss
        return CacheUsage(prompt, completion, hit, None, "deepseek")

    cached = _count(usage.get("cached_tokens"))
    if cached is not None:
        return CacheUsage(prompt, completion, cached, None, "moonshot")

    read = _count(usage.get("cache_read_input_tokens"))
    created = _count(usage.get("cache_creation_input_tokens"))
    if read is not None or created is not None:
        if prompt is None:
            uncached = _count(usage.get("input_tokens"))
            prompt = None if uncached is None else uncached + (read or 0) + (created or 0)
        return CacheUsage(prompt, completion, read or 0, created, "anthropic")

    if prompt is None:
        prompt = _count(usage.get("input_tokens"))
    return CacheUsage(prompt, completion, None, None, "none")


def usage_numbers(usage: Any) -> tuple[int, int, int]:
    """(prompt, completion, provider-cached) tokens of an answer's ``usage``, in any provider's shape
    (:func:`normalize_usage`); zeros where absent: the ledger adds what is known."""
    figures = normalize_usage(usage)
    return figures.prompt_tokens or 0, figures.completion_tokens or 0, figures.cached_tokens or 0


def usage_in(payload: Any) -> Any:
    """The ``usage`` object of a completion or stream chunk: top level, else ``choices[0].usage`` (Moonshot)."""
    if not isinstance(payload, Mapping):
        return None
    usage = payload.get("usage")
    if isinstance(usage, Mapping):
        return usage
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        inner = choices[0].get("usage")
        if isinstance(inner, Mapping):
            return inner
    return None
