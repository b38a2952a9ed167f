"""The upstream's ``GET /models``: which models are text models, and what each advertises about caching.

Venice lists ``type`` (``text``, ``embedding``, ``image``...) and prices under ``model_spec.pricing``
(``input``, ``output`` and, for models billed at a discount when cached, ``cache_input``), each a number
or ``{"usd": ..., "diem": ...}``. OpenRouter-style ``pricing`` at the top level (USD per token, as
strings) is read too. Other upstreams list no prices: then nothing is advertised (``None``), which is
never taken for "no caching".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from proxy.contracts import Upstream
from proxy.errors import UpstreamError

NOT_TEXT = ("embedding", "embed", "tts", "whisper", "dall-e", "image", "moderation", "transcribe", "speech")


@dataclass(frozen=True)
class Advertised:
    caching: bool | None = None  # a cached-input price is listed (True), prices without one (False), none (None)
    input_per_million: float | None = None
    cached_input_per_million: float | None = None
    output_per_million: float | None = None

    @property
    def saving_per_million(self) -> float | None:
        """USD a cached 1M prompt tokens saves at the model's advertised prices."""
        if self.input_per_million is None or self.cached_input_per_million is None:
            return None
        return round(max(0.0, self.input_per_million - self.cached_input_per_million), 6)

    def cost(self, prompt: int, cached: int, completion: int) -> float | None:
        """USD one answer cost at the advertised prices (cached input at its price, where one is listed);
        ``None`` when the model lists no input price."""
        if self.input_per_million is None:
            return None
        cached = min(cached, prompt)
        cached_price = self.cached_input_per_million
        if cached_price is None:
            cached_price = self.input_per_million
        return ((prompt - cached) * self.input_per_million + cached * cached_price
                + completion * (self.output_per_million or 0.0)) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {"caching": self.caching, "input_per_1m": self.input_per_million,
                "cached_input_per_1m": self.cached_input_per_million, "output_per_1m": self.output_per_million,
                "saving_per_1m_cached": self.saving_per_million}


def _usd(value: Any, per_token: bool = False) -> float | None:
    if isinstance(value, dict):
        value = value.get("usd")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number * 1e6 if per_token else number


def advertised(entry: dict[str, Any] | None) -> Advertised:
    if not isinstance(entry, dict):
        return Advertised()
    spec = entry.get("model_spec")
    pricing = spec.get("pricing") if isinstance(spec, dict) else None
    per_token = False
    if not isinstance(pricing, dict):
        pricing, per_token = entry.get("pricing"), True  # OpenRouter: USD per token
    if not isinstance(pricing, dict):
        return Advertised()
    keys = ("cache_input", "input_cache_read", "cached_input")
    cached = next((_usd(pricing[k], per_token) for k in keys if k in pricing), None)
    source = pricing.get("input", pricing.get("prompt"))
    output = pricing.get("output", pricing.get("completion"))
    return Advertised(cached is not None, _usd(source, per_token), cached, _usd(output, per_token))


def is_text_model(entry: dict[str, Any]) -> bool:
    kind = entry.get("type")
    if kind is not None:
        return kind == "text"
    model_id = str(entry.get("id", "")).lower()
    return not any(word in model_id for word in NOT_TEXT)


async def list_models(upstream: Upstream, api_key: str | None) -> list[dict[str, Any]]:
    """The entries of ``GET /models``; raises :class:`UpstreamError` when the upstream cannot list them."""
    headers = [("accept", "application/json")] + ([("authorization", f"Bearer {api_key}")] if api_key else [])
    response = await upstream.send("GET", "/models", headers=headers, content=None)
    raw = await response.read()
    if response.status_code != 200:
        raise UpstreamError(f"GET /models answered {response.status_code}: {raw[:200].decode(errors='replace')}")
    try:
        data = orjson.loads(raw).get("data")
    except (orjson.JSONDecodeError, AttributeError):
        data = None
    if not isinstance(data, list):
        raise UpstreamError("GET /models did not answer a list of models")
    return [entry for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)]
