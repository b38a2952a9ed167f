"""``GET /kv-cache-metrics``: provider-side prompt caching (the provider's KV cache) seen in live traffic.

Per model, from the savings ledger (all replicas on one Redis, surviving restarts): the prompt tokens the
upstream was asked to read on misses, how many of them the provider served from its own prompt cache, the
share, and what that saved at the model's price (input minus cached-input price, :mod:`proxy.monitoring.pricing`).
The token counts come from each answer's ``usage`` through the one normaliser of every provider's shape
(:func:`proxy.core.usage.normalize_usage`: OpenAI's ``prompt_tokens_details.cached_tokens``, Anthropic's
``cache_read_input_tokens``, DeepSeek's ``prompt_cache_hit_tokens``...), the same the probe reads. Answers
served by cachegate's own tiers never reach the provider, so they are not in these figures.
"""

from __future__ import annotations

from typing import Any

from proxy.monitoring.ledger import GLOBAL, Key
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.report import by_scope

NOTE = ("prompt_tokens: prompt tokens of answers the upstream produced (cachegate's misses and bypasses); "
        "cached_tokens: those the provider read from its own prompt cache; saved_usd: cached_tokens at the "
        "input price minus the cached-input price")


def _row(values: dict[str, float]) -> dict[str, Any]:
    prompt = round(values.get("prompt_tokens", 0))
    cached = round(values.get("provider_cached_tokens", 0))
    return {"requests": round(values.get("misses", 0) + values.get("bypassed", 0)), "prompt_tokens": prompt,
            "cached_tokens": cached, "cached_ratio": round(cached / prompt, 4) if prompt else None}


def kv_cache_report(totals: dict[Key, float], pricing: Pricing) -> dict[str, Any]:
    models = []
    saved_total = 0.0
    for name, values in sorted(by_scope(totals, "model:").items()):
        row = _row(values)
        price, fallback = pricing.lookup(name)
        saved = price.provider_saving(row["cached_tokens"])
        saved_total += saved
        models.append({"model": name, **row, "saved_usd": round(saved, 12), "price_fallback": fallback,
                       "cached_input_per_1m": price.cached_input, "input_per_1m": price.input})
    glob = {name: value for (scope, name), value in totals.items() if scope == GLOBAL}
    return {"models": models, "total": {**_row(glob), "saved_usd": round(saved_total, 12)}, "note": NOTE}
