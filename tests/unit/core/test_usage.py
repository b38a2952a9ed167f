"""proxy.core.usage: every provider's cache shape, plain and streamed, to the same exact figures."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.core.usage import ABSENT, CacheUsage, normalize_usage, usage_in

SHAPES: list[tuple[str, dict[str, Any], CacheUsage]] = [
    ("openai", {"prompt_tokens": 2048, "completion_tokens": 10, "total_tokens": 2058,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0}},
     CacheUsage(2048, 10, 1920, None, "openai")),
    ("venice", {"prompt_tokens": 2048, "completion_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_input_tokens": 1920}},
     CacheUsage(2048, 10, 0, 1920, "openai")),
    ("openrouter", {"prompt_tokens": 2048, "completion_tokens": 10,
                    "prompt_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 0}},
     CacheUsage(2048, 10, 1920, 0, "openai")),
    ("deepseek", {"prompt_tokens": 2048, "completion_tokens": 10, "prompt_cache_hit_tokens": 1920,
                  "prompt_cache_miss_tokens": 128},
     CacheUsage(2048, 10, 1920, None, "deepseek")),
    ("deepseek without prompt_tokens", {"completion_tokens": 10, "prompt_cache_hit_tokens": 1920,
                                        "prompt_cache_miss_tokens": 128},
     CacheUsage(2048, 10, 1920, None, "deepseek")),
    ("moonshot", {"prompt_tokens": 2048, "completion_tokens": 10, "total_tokens": 2058, "cached_tokens": 1920},
     CacheUsage(2048, 10, 1920, None, "moonshot")),
    ("anthropic", {"input_tokens": 100, "cache_read_input_tokens": 1920, "cache_creation_input_tokens": 28,
                   "output_tokens": 10},
     CacheUsage(2048, 10, 1920, 28, "anthropic")),
    ("anthropic, nothing read", {"input_tokens": 120, "cache_creation_input_tokens": 1928, "output_tokens": 10},
     CacheUsage(2048, 10, 0, 1928, "anthropic")),
    ("anthropic fields under an OpenAI prompt_tokens", {"prompt_tokens": 2048, "completion_tokens": 10,
                                                        "cache_read_input_tokens": 1920},
     CacheUsage(2048, 10, 1920, None, "anthropic")),
    ("no cache field", {"prompt_tokens": 2048, "completion_tokens": 10, "total_tokens": 2058},
     CacheUsage(2048, 10, None, None, "none")),
    ("cached_tokens null", {"prompt_tokens": 2048, "completion_tokens": 10,
                            "prompt_tokens_details": {"cached_tokens": None}},
     CacheUsage(2048, 10, None, None, "none")),
    ("empty details", {"prompt_tokens": 2048, "prompt_tokens_details": {}},
     CacheUsage(2048, None, None, None, "none")),
    ("a reported zero", {"prompt_tokens": 2048, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 0}},
     CacheUsage(2048, 10, 0, None, "openai")),
]


@pytest.mark.parametrize(("usage", "expected"), [(u, e) for _, u, e in SHAPES], ids=[name for name, _, _ in SHAPES])
def test_each_shape(usage: dict[str, Any], expected: CacheUsage) -> None:
    assert normalize_usage(usage) == expected


def test_absent_usage_is_unknown_not_zero() -> None:
    for value in (None, "usage", 3, [], {"usage": None}.get("usage")):
        assert normalize_usage(value) is ABSENT
    assert ABSENT.cached_tokens is None
    assert ABSENT.cached_ratio is None
    assert not ABSENT.cache_reported
    assert normalize_usage({"prompt_tokens": 5}).cached_ratio is None


def test_bad_numbers_are_unknown() -> None:
    usage = normalize_usage({"prompt_tokens": "lots", "completion_tokens": True,
                             "prompt_tokens_details": {"cached_tokens": -1}})
    assert usage == CacheUsage(None, None, None, None, "none")
    assert normalize_usage({"prompt_tokens": 10.0, "prompt_tokens_details": {"cached_tokens": 4.0}}) == CacheUsage(
        10, None, 4, None, "openai")
    assert normalize_usage({"prompt_tokens": 10.5}).prompt_tokens is None


def test_ratio_and_dict() -> None:
    usage = normalize_usage(SHAPES[0][1])
    assert usage.cached_ratio == 0.9375
    assert usage.as_dict() == {"prompt_tokens": 2048, "completion_tokens": 10, "cached_tokens": 1920,
                               "cache_write_tokens": None, "shape": "openai"}


def test_usage_in_a_completion_and_in_stream_chunks() -> None:
    openai_final = {"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "cached_tokens": 0}}
    assert usage_in(openai_final) == {"prompt_tokens": 9, "cached_tokens": 0}
    moonshot_final = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                              "usage": {"prompt_tokens": 9, "cached_tokens": 8}}]}
    assert normalize_usage(usage_in(moonshot_final)) == CacheUsage(9, None, 8, None, "moonshot")
    assert usage_in({"id": "c", "choices": [{"index": 0, "delta": {"content": "x"}}], "usage": None}) is None
    assert usage_in({"choices": "x"}) is None
    assert usage_in(None) is None
