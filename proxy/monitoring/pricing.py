"""Model prices in USD per 1M tokens: the shipped table, overridden or extended by ``PRICING_FILE``.

A model is found by its exact name, then case-insensitively, then by the longest known name it starts
with followed by ``-`` (``gpt-4o-mini-2024-07-18`` → ``gpt-4o-mini``), then without a ``provider/``
prefix. An unknown model is priced at the fallback, logged once, and listed in :attr:`Pricing.fallbacks` —
the first :data:`MAX_FALLBACKS` of them: model names come from clients, so the list and the warnings are
bounded (and the observer prices only models the upstream answered with a 2xx).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from proxy.errors import SettingsError

logger = logging.getLogger("cachegate.pricing")
MAX_FALLBACKS = 1000  # unknown models listed (and warned about) by name


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float

    def spent(self, prompt: int, completion: int, cached: int) -> float:
        """What a miss cost: uncached prompt tokens, cached prompt tokens and completion tokens."""
        cached = min(cached, prompt)
        return ((prompt - cached) * self.input + cached * self.cached_input + completion * self.output) / 1e6

    def full(self, prompt: int, completion: int) -> float:
        """What an answer costs without any cache: saved when a cache tier serves it."""
        return (prompt * self.input + completion * self.output) / 1e6

    def provider_saving(self, cached: int) -> float:
        """What the provider's prompt caching saved on ``cached`` prompt tokens."""
        return cached * max(0.0, self.input - self.cached_input) / 1e6

    def as_dict(self) -> dict[str, float]:
        return {"input_per_1m": self.input, "cached_input_per_1m": self.cached_input,
                "output_per_1m": self.output}


def _price(raw: Any, where: str) -> Price:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object with input, output and optionally cached_input")
    try:
        values = {name: float(raw[name]) for name in ("input", "output")}
        cached = float(raw.get("cached_input", values["input"]))
    except KeyError as exc:
        raise ValueError(f"{where}: missing {exc.args[0]}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{where}: prices must be numbers") from None
    if min(*values.values(), cached) < 0:
        raise ValueError(f"{where}: prices must not be negative")
    return Price(values["input"], cached, values["output"])


def _parse(data: Any, source: str) -> tuple[dict[str, Price], Price | None]:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object")
    models_raw = data.get("models", data if "fallback" not in data else {})
    if not isinstance(models_raw, dict):
        raise ValueError(f"{source}: 'models' must be an object")
    models = {name: _price(raw, f"{source}: {name}") for name, raw in models_raw.items()
              if not name.startswith("_")}
    fallback = _price(data["fallback"], f"{source}: fallback") if "fallback" in data else None
    return models, fallback


def _shipped() -> tuple[dict[str, Price], Price]:
    text = resources.files(__package__).joinpath("pricing.json").read_text(encoding="utf-8")
    models, fallback = _parse(json.loads(text), "pricing.json")
    assert fallback is not None
    return models, fallback


class Pricing:
    def __init__(self, models: dict[str, Price] | None = None, fallback: Price | None = None, *,
                 source: str = "defaults") -> None:
        shipped, shipped_fallback = _shipped()
        self.models: dict[str, Price] = {**shipped, **(models or {})}
        self.fallback = fallback or shipped_fallback
        self.source = source
        self.fallbacks: set[str] = set()
        self._lower = {name.lower(): price for name, price in self.models.items()}
        self._resolved: dict[str, tuple[Price, bool]] = {}

    @classmethod
    def load(cls, path: str | None) -> Pricing:
        """The shipped prices with ``path`` (a PRICING_FILE) applied; a bad file stops start-up."""
        if not path:
            return cls()
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            models, fallback = _parse(data, path)
        except (OSError, ValueError) as exc:
            raise SettingsError(f"PRICING_FILE: {exc}", param="PRICING_FILE") from None
        return cls(models, fallback, source=f"defaults+{path}")

    def lookup(self, model: str, *, note: bool = True) -> tuple[Price, bool]:
        """(price, is_fallback). Cached per model name: O(1) after the first call. ``note``: list and warn
        about a model without a price (a report that only shows prices does not)."""
        found = self._resolved.get(model)
        if found is None:
            price = self._match(model)
            found = (price, False) if price is not None else (self.fallback, True)
            if len(self._resolved) < 10_000:
                self._resolved[model] = found
        if note and found[1] and model not in self.fallbacks and len(self.fallbacks) < MAX_FALLBACKS:
            self.fallbacks.add(model)
            logger.warning("no price for model %r: using the fallback price (input $%s, output $%s per 1M "
                           "tokens); add it to PRICING_FILE", model, self.fallback.input, self.fallback.output)
            if len(self.fallbacks) == MAX_FALLBACKS:
                logger.warning("%d models have no price: more are priced at the fallback but not listed or "
                               "warned about", MAX_FALLBACKS)
        return found

    def price(self, model: str) -> Price:
        return self.lookup(model)[0]

    def _match(self, model: str) -> Price | None:
        lower = model.lower()
        for name in (lower, lower.rpartition("/")[2]):
            if name in self._lower:
                return self._lower[name]
            best = max((known for known in self._lower if name.startswith(known + "-")), key=len, default=None)
            if best is not None:
                return self._lower[best]
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "unit": "USD per 1M tokens",
            "source": self.source,
            "models": {name: price.as_dict() for name, price in sorted(self.models.items())},
            "fallback": self.fallback.as_dict(),
            "fallback_models": sorted(self.fallbacks),
        }
