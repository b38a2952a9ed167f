"""The wire shapes in which providers report prompt-cache figures, rendered from the same numbers.

The simulator answers in these, and tests check that :func:`proxy.core.usage.normalize_usage` reads
every one back to the same figures. ``moonshot`` streams carry their usage inside ``choices[0].usage``
of the last chunk (see :func:`in_choice`).
"""

from __future__ import annotations

from typing import Any

SHAPES = ("openai", "venice", "openrouter", "deepseek", "moonshot", "anthropic", "none")


def render_usage(shape: str, *, prompt: int, completion: int, cached: int, written: int = 0) -> dict[str, Any]:
    """``usage`` as provider ``shape`` writes it for ``prompt`` tokens of which ``cached`` were read and
    ``written`` stored; ``none`` has no cache field at all."""
    base: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                            "total_tokens": prompt + completion}
    if shape == "openai":
        return {**base, "prompt_tokens_details": {"cached_tokens": cached}}
    if shape == "venice":
        return {**base, "prompt_tokens_details": {"cached_tokens": cached, "cache_creation_input_tokens": written}}
    if shape == "openrouter":
        return {**base, "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written}}
    if shape == "deepseek":
        return {**base, "prompt_cache_hit_tokens": cached, "prompt_cache_miss_tokens": prompt - cached}
    if shape == "moonshot":
        return {**base, "cached_tokens": cached}
    if shape == "anthropic":
        return {"input_tokens": prompt - cached - written, "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": written, "output_tokens": completion}
    if shape == "none":
        return base
    raise ValueError(f"unknown usage shape {shape!r}")


def in_choice(shape: str) -> bool:
    """Whether a stream of ``shape`` reports usage inside the last choice instead of a usage-only chunk."""
    return shape == "moonshot"
