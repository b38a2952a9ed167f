"""What the probe knows about one model while it probes it: its client, settings and learnt recipe.

The recipe is what later tests need to get a fair measurement: how long to let a written prefix settle
before it can be read (learnt by ``basic``), which hints the model needs (learnt by ``hints``) and the
prompt size at which it caches (learnt by ``sizes``). Every request goes through :meth:`ModelSession.ask`,
which keeps the evidence and teaches the token gauge (whose reading is also what an answer without usage
is charged for its prompt, :mod:`proxy.probe.charge`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from proxy.probe.clock import Clock
from proxy.probe.exchange import CheckResult, Exchange, ProbeClient
from proxy.probe.prompts import USER_TURN, TokenGauge, messages, new_nonce
from proxy.probe.request import ROUTING_HINTS


@dataclass(frozen=True)
class ProbeConfig:
    """How thoroughly to probe; :meth:`quick` is the cheap variant (``--quick``)."""

    basic_tokens: int = 2048
    repeats: int = 3
    repeat_pause: float = 1.0
    hint_repeats: int = 2
    all_hints: bool = True  # try every hint even after one worked (finds parameters a model rejects)
    persistence_repeats: int = 8
    size_ladder: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
    refine_sizes: bool = True
    max_size_probes: int = 20
    latency_samples: int = 3
    ttl_range: tuple[float, float] = (5.0, 3600.0)
    ttl_resolution: float = 1.25
    ttl_max_steps: int = 14
    max_tokens: int = 16
    basic_hints: tuple[str, ...] = ()  # hints basic sends (none: it measures the model as it is; the microscope
    # sends the one the model needs)

    @classmethod
    def quick(cls, **changes: Any) -> ProbeConfig:
        return cls(**{"repeats": 3, "hint_repeats": 1, "all_hints": False, "persistence_repeats": 4,
                      "size_ladder": (1024, 2048, 4096), "refine_sizes": False, "latency_samples": 2, **changes})


@dataclass
class Recipe:
    settle: float = 1.0  # seconds between writing a prompt and reading it back
    hints: tuple[str, ...] = ()  # what the model needs: a routing hint and/or cache_control
    size: int = 2048  # a prompt size (tokens) at which the model caches
    small_size: int | None = None  # a cheaper one, safely above the minimum prefix (learnt by sizes)

    @property
    def routing_hint(self) -> str | None:
        return next((h for h in self.hints if h in ROUTING_HINTS), None)


@dataclass
class Prompt:
    nonce: str
    words: int
    messages: list[Any]


@dataclass
class ModelSession:
    model: str
    client: ProbeClient
    clock: Clock
    config: ProbeConfig
    recipe: Recipe = field(default_factory=Recipe)
    gauge: TokenGauge = field(default_factory=TokenGauge)
    exchanges: list[Exchange] = field(default_factory=list)
    results: dict[str, CheckResult] = field(default_factory=dict)  # the tests run so far

    @property
    def cheap_size(self) -> int:
        """The smallest prompt known to cache safely (after ``sizes``), else the default size."""
        return self.recipe.small_size or self.recipe.size

    def prompt(self, tokens: int, *, user: str = USER_TURN, hints: Collection[str] | None = None,
               nonce: str | None = None, words: int | None = None) -> Prompt:
        """A fresh prompt of about ``tokens`` tokens (the nonce makes it new); with ``nonce`` and ``words``
        the same system prompt again, here with another user turn."""
        hints = self.recipe.hints if hints is None else hints
        words = self.gauge.words_for(tokens) if words is None else words
        nonce = nonce or new_nonce()
        return Prompt(nonce, words, messages(nonce, words, user=user, cache_control="cache_control" in hints))

    async def ask(self, prompt: Prompt, *, test: str, step: str, role: str, stream: bool = False,
                  hints: Collection[str] | None = None) -> Exchange:
        hints = tuple(self.recipe.hints if hints is None else hints)
        ex = await self.client.chat(self.model, prompt.messages, test=test, step=step, role=role, stream=stream,
                                    hints=[h for h in hints if h != "cache_control"], pin=prompt.nonce,
                                    prompt_tokens=self.gauge.tokens_for(prompt.words))
        ex.hints = hints
        self.exchanges.append(ex)
        if ex.ok:
            self.gauge.observe(prompt.words, ex.usage.prompt_tokens)
        return ex

    async def trial(self, tokens: int, *, test: str, step: str, repeats: int,
                    hints: Collection[str] | None = None, settle: float | None = None) -> list[Exchange]:
        """A fresh prompt, then ``repeats`` repeats of it, the first after the settle time and the others
        ``repeat_pause`` apart. Returns the prime followed by the repeats."""
        hints = self.recipe.hints if hints is None else tuple(hints)
        prompt = self.prompt(tokens, hints=hints)
        out = [await self.ask(prompt, test=test, step=step, role="prime", hints=hints)]
        for i in range(repeats):
            first_wait = self.recipe.settle if settle is None else settle
            await self.clock.sleep(first_wait if i == 0 else self.config.repeat_pause)
            out.append(await self.ask(prompt, test=test, step=step, role="repeat", hints=hints))
        return out

    @property
    def tokens_spent(self) -> int:
        return sum(ex.tokens for ex in self.exchanges)


def ratio(exchanges: list[Exchange]) -> float | None:
    """Share of the answered repeats that hit; ``None`` when none was answered with a cache field (unknown
    is not 0)."""
    answered = [ex for ex in exchanges if ex.ok and ex.usage.cache_reported]
    return sum(ex.hit for ex in answered) / len(answered) if answered else None


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
