"""Per-model prompt-cache profiles of the upstream simulator, chosen by the model name.

Each profile is the *truth* a probe must rediscover: whether the model caches, how a request's tokens
are matched (``prefix``: the longest common prefix with any stored prompt; ``units``: DeepSeek-style,
only whole stored units match and a shared prefix becomes a unit once it was seen twice; ``marks``:
only prefixes ending at a ``cache_control`` mark), the minimum cached prefix and the step above it, the
TTL, refresh-on-hit, a write delay, how many servers there are, how unpinned requests spread over them
and which hint pins a prompt to one, a parameter without which nothing is cached, the parameters rejected
with a 400, the usage shape (and whether a stream, or a plain answer at all, reports it), the latency model
and the price it advertises.

Tokens in the simulator are whitespace-separated words, plus one ``<role>`` token per message, so a
prompt's length is known exactly from ``prompt_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tests.support.usage_shapes import SHAPES


@dataclass(frozen=True)
class CacheProfile:
    name: str
    caches: bool = True
    matching: str = "prefix"  # prefix | units | marks
    min_prefix: int = 1024
    step: int = 128
    ttl: float = 300.0  # seconds of the simulator's clock after the write (or the last hit, with refresh_on_hit)
    refresh_on_hit: bool = False
    write_delay: float = 0.0  # seconds before a written prefix can be read
    servers: int = 1  # unhinted requests spread over them: a balancer without affinity
    spread: str = "round_robin"  # round_robin | random (seeded by the simulator, so runs repeat exactly)
    pin: str | None = None  # the hint that pins a prompt to one server: prompt_cache_key | x-grok-conv-id
    requires: str | None = None  # a body parameter without which nothing is read or written
    rejects: tuple[str, ...] = ()  # body parameters answered with a 400
    usage_shape: str = "openai"
    stream_usage: str = "same"  # same | missing (a stream never reports usage) | uncached (it reports 0 cached)
    plain_usage: str = "same"  # same | missing (a plain answer carries no usage: the spend is the probe's guess)
    venice_system_tokens: int = 0  # Venice-style prompt prepended unless include_venice_system_prompt is false
    base_latency: float = 0.2  # seconds to the first token ...
    per_token_latency: float = 0.0002  # ... plus this per uncached prompt token
    input_price: float = 1.0  # USD per 1M tokens, as /models advertises them
    output_price: float = 2.0
    cache_price: float | None = 0.1  # advertised cached-input price; None: not advertised

    def cached_for(self, matched: int) -> int:
        """Tokens reported as cached when ``matched`` tokens of the prompt are found: rounded down to the
        minimum plus whole steps, 0 below the minimum."""
        if not self.caches or matched < self.min_prefix:
            return 0
        return self.min_prefix + (matched - self.min_prefix) // self.step * self.step

    def ttft(self, prompt: int, cached: int) -> float:
        return self.base_latency + self.per_token_latency * (prompt - cached)


_OPENAI = CacheProfile("sim-openai", min_prefix=1024, step=128, ttl=420.0, refresh_on_hit=True)

PROFILES: dict[str, CacheProfile] = {p.name: p for p in (
    _OPENAI,
    CacheProfile("sim-deepseek", matching="units", min_prefix=64, step=64, ttl=1800.0, usage_shape="deepseek",
                 cache_price=None),
    CacheProfile("sim-kimi", min_prefix=256, step=256, ttl=150.0, usage_shape="moonshot"),
    CacheProfile("sim-vllm", min_prefix=16, step=16, ttl=90.0, cache_price=None),
    CacheProfile("sim-claude", matching="marks", min_prefix=1024, step=1, ttl=300.0, refresh_on_hit=True,
                 usage_shape="anthropic"),
    # xAI-like: four servers, pinned only by x-grok-conv-id (prompt_cache_key is ignored), no retention parameter
    CacheProfile("sim-grok", servers=4, pin="x-grok-conv-id", rejects=("prompt_cache_retention",), ttl=600.0),
    CacheProfile("sim-routed", servers=4, pin="prompt_cache_key", ttl=600.0),
    # a balancer that picks a server at random, as a real one may: persistence meets an uneven spread
    CacheProfile("sim-scattered", servers=4, spread="random", pin="prompt_cache_key", ttl=600.0),
    # caches only with OpenAI's extended retention asked for: the needed hint is prompt_cache_retention
    CacheProfile("sim-retained", requires="prompt_cache_retention", ttl=600.0),
    # streams that do not tell what the plain answers tell: stream parity must say False
    CacheProfile("sim-stream-blind", stream_usage="missing", ttl=600.0),
    CacheProfile("sim-stream-stale", stream_usage="uncached", ttl=600.0),
    CacheProfile("sim-delayed", write_delay=1.5, ttl=240.0, refresh_on_hit=True),
    CacheProfile("sim-llama", caches=False),  # advertises a cached price it never delivers: drift
    CacheProfile("sim-nocache", caches=False, cache_price=None),
    CacheProfile("sim-silent", usage_shape="none", cache_price=None),  # caches, but never says so
    # no answer carries usage at all, plain or streamed: it is still billed, so the probe charges estimates
    CacheProfile("sim-usageless", plain_usage="missing", stream_usage="missing", ttl=600.0),
    CacheProfile("sim-glm", usage_shape="venice", venice_system_tokens=1100, ttl=300.0),
    *(replace(_OPENAI, name=f"sim-shape-{shape}", usage_shape=shape) for shape in SHAPES),
)}


def profile_for(model: object) -> CacheProfile | None:
    return PROFILES.get(model) if isinstance(model, str) else None


def catalog() -> list[dict[str, object]]:
    """``/v1/models`` entries of the profiled models, Venice-style (type, model_spec.pricing)."""
    entries: list[dict[str, object]] = []
    for profile in PROFILES.values():
        pricing: dict[str, object] = {"input": {"usd": profile.input_price}, "output": {"usd": profile.output_price}}
        if profile.cache_price is not None:
            pricing["cache_input"] = {"usd": profile.cache_price}
        entries.append({"id": profile.name, "object": "model", "created": 1700000000, "owned_by": "cachegate-sim",
                        "type": "text", "model_spec": {"pricing": pricing}})
    entries.append({"id": "sim-embedding", "object": "model", "created": 1700000000, "owned_by": "cachegate-sim",
                    "type": "embedding"})
    return entries
