"""The tier's decisions with a stand-in embedder (vectors chosen by the test) on both stores."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from embedding_service.errors import EmbeddingError
from proxy.cache.entry import CachedResponse
from proxy.contracts import NullObserver, SemanticMatch
from proxy.errors import BackendError, NotFoundError
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import JobRunner
from proxy.semantic.tier import SemanticCache, semantic_text

from .conftest import make_store

DIM = 4
STORED = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


class FakeEmbedder:
    name = "fake"
    dim = DIM
    remote = False
    location = "in-process fake"

    def __init__(self, vectors: dict[str, list[float]] | None = None) -> None:
        self.vectors = vectors or {}
        self.calls = 0
        self.error: Exception | None = None
        self.delay = 0.0

    async def start(self) -> None:
        return None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return [self.vectors.get(t) or _hashed(t) for t in texts]

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _hashed(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return unit(*(b - 127.5 for b in digest[:DIM]))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def body(text: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def entry(clock: Clock, text: str = "answer", ttl: int = 60, model: str = "m") -> CachedResponse:
    completion = {"id": "c1", "object": "chat.completion", "model": model,
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                               "finish_reason": "stop"}]}
    return CachedResponse.from_completion(completion, model=model, stored_at=clock.now, ttl=ttl)


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder({STORED: unit(1, 0, 0, 0), PARAPHRASE: unit(1, 0.3, 0, 0),
                         "far": unit(0, 1, 0, 0), "How do I reset my 2 passwords?": unit(1, 0.1, 0, 0)})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def tier(store_kind: str, tmp_path: Path, embedder: FakeEmbedder, clock: Clock) -> AsyncIterator[SemanticCache]:
    cache = make_tier(store_kind, tmp_path, embedder, clock)
    await cache.start()
    yield cache
    await cache.stop()


def make_tier(store_kind: str, tmp_path: Path, embedder: FakeEmbedder, clock: Clock, **options: Any) -> SemanticCache:
    options.setdefault("threshold", 0.9)
    return SemanticCache(backend=make_store(store_kind, tmp_path), embedder=embedder, observer=NullObserver(),
                         failopen=FailOpen(NullObserver()), jobs=JobRunner(), clock=clock, **options)


async def store(tier: SemanticCache, clock: Clock, text: str = STORED, *, scope: str = "s", ttl: int = 60,
                namespace: str = "", model: str = "m") -> None:
    probe = await tier.lookup(body(text), scope=scope, namespace=namespace, request_id=f"store-{text}")
    assert probe is not None and probe.entry is None
    tier.remember(probe, entry(clock, f"answer to {text}", ttl=ttl, model=model), namespace=namespace)
    await tier.flush()


async def test_a_paraphrase_is_served_with_its_similarity(tier: SemanticCache, clock: Clock,
                                                          embedder: FakeEmbedder) -> None:
    await store(tier, clock)
    calls = embedder.calls
    probe = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="r1")
    assert probe is not None and probe.entry is not None
    assert probe.entry.completion["choices"][0]["message"]["content"] == f"answer to {STORED}"
    assert probe.similarity == pytest.approx(1 / math.sqrt(1.09), abs=1e-3)
    assert embedder.calls == calls + 1  # the stored prompt was embedded once, at lookup, and reused
    assert tier.stats["hits"] == 1


async def test_other_scopes_and_low_similarity_miss(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock)
    other = await tier.lookup(body(PARAPHRASE), scope="other", namespace="", request_id="r")
    far = await tier.lookup(body("far"), scope="s", namespace="", request_id="r")
    assert other is not None and other.entry is None
    assert far is not None and far.entry is None


async def test_a_guard_refuses_a_close_candidate(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock)
    probe = await tier.lookup(body("How do I reset my 2 passwords?"), scope="s", namespace="", request_id="r")
    assert probe is not None and probe.entry is None
    assert tier.stats["refused_numbers"] == 1


async def test_shadow_mode_counts_but_never_serves(store_kind: str, tmp_path: Path, embedder: FakeEmbedder,
                                                   clock: Clock) -> None:
    tier = make_tier(store_kind, tmp_path, embedder, clock, mode="shadow")
    await tier.start()
    try:
        await store(tier, clock)
        probe = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="r")
        assert probe is not None and probe.entry is None and probe.shadow_hit
        assert probe.similarity is not None and probe.similarity > 0.9
        assert tier.stats["shadow_hits"] == 1
    finally:
        await tier.stop()


@pytest.mark.parametrize("request_body", [
    body([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:,"}}]),
    {"model": "m", "messages": [{"role": "user", "content": "weather?"},
                                {"role": "assistant", "tool_calls": [{"id": "1", "type": "function"}]},
                                {"role": "tool", "tool_call_id": "1", "content": "sunny"},
                                {"role": "user", "content": "and tomorrow?"}]},
    {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]},
    body("word " * 300),
    body("   "),
    body("weather?", tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}]),
    body("weather?", functions=[{"name": "weather", "parameters": {}}]),
])
async def test_requests_the_model_cannot_see_whole_skip_the_tier(tier: SemanticCache,
                                                                  request_body: dict[str, Any]) -> None:
    assert await tier.lookup(request_body, scope="s", namespace="", request_id="r") is None
    assert tier.stats["skipped"] == 1


def test_text_parts_are_joined() -> None:
    assert semantic_text(body([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])) == "a\nb"


async def test_an_expired_entry_is_never_served_and_is_cleaned_up(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock, ttl=10)
    clock.now += 11
    probe = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="r")
    assert probe is not None and probe.entry is None
    assert await tier.count() == 1
    await tier.maintain()
    assert await tier.count() == 0
    assert tier.stats["expired_removed"] == 1


async def test_feedback_evicts_and_blocks_the_pair(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock)
    probe = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="wrong-one")
    assert probe is not None and probe.entry is not None
    result = await tier.feedback("wrong-one", "wrong")
    assert result["evicted"] is True and result["blocked"] is True
    assert await tier.count() == 0
    await store(tier, clock)  # the same prompt is stored again later...
    probe = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="again")
    assert probe is not None and probe.entry is None  # ...but the pair never matches again
    assert tier.stats["refused_feedback"] == 1
    with pytest.raises(NotFoundError):
        await tier.feedback("never-served", "wrong")


async def test_clear_narrows_by_model_and_namespace(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock, STORED, namespace="team-a", model="m1")
    await store(tier, clock, "far", namespace="team-b", model="m1")
    await store(tier, clock, PARAPHRASE, scope="s2", namespace="team-a", model="m2")
    assert await tier.count() == 3
    assert await tier.clear(model="m1", namespace="team-a") == 1
    assert await tier.clear(namespace="team-a") == 1
    assert await tier.clear() == 1
    assert await tier.count() == 0


async def test_a_failing_embedder_fails_open(tier: SemanticCache, embedder: FakeEmbedder) -> None:
    embedder.error = EmbeddingError("embedding", "connection refused")
    assert await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="r") is None
    state = tier._failopen.state("embedding")
    assert state.failures == 1 and state.degraded


async def test_a_slow_embedder_is_cut_short(store_kind: str, tmp_path: Path, embedder: FakeEmbedder,
                                            clock: Clock) -> None:
    tier = make_tier(store_kind, tmp_path, embedder, clock, embedding_timeout=0.05)
    await tier.start()
    try:
        embedder.delay = 1.0
        started = asyncio.get_running_loop().time()
        assert await tier.lookup(body("slow"), scope="s", namespace="", request_id="r") is None
        assert asyncio.get_running_loop().time() - started < 0.5
        assert "longer than" in (tier._failopen.state("embedding").last_error or "")
    finally:
        await tier.stop()


async def test_a_failing_store_fails_open(tier: SemanticCache, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(*args: Any, **kwargs: Any) -> list[SemanticMatch]:
        raise BackendError("qdrant", "connection refused")

    monkeypatch.setattr(tier.backend, "search", down)
    monkeypatch.setattr(tier.backend, "upsert", down)
    probe = await tier.lookup(body(STORED), scope="s", namespace="", request_id="r")
    assert probe is not None and probe.entry is None
    tier.remember(probe, entry(clock), namespace="")
    await tier.flush()
    assert tier.stats["store_errors"] == 1
    assert tier._failopen.state("qdrant").failures == 2


async def test_a_store_that_cannot_open_disables_the_tier_until_it_can(store_kind: str, tmp_path: Path,
                                                                       embedder: FakeEmbedder, clock: Clock,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tier = make_tier(store_kind, tmp_path, embedder, clock)
    real = tier.backend.ensure_ready

    async def refuse(dim: int) -> None:
        raise BackendError("qdrant", "unreachable")

    monkeypatch.setattr(tier.backend, "ensure_ready", refuse)
    await tier.start()
    try:
        assert not tier.ready
        assert await tier.lookup(body(STORED), scope="s", namespace="", request_id="r") is None
        monkeypatch.setattr(tier.backend, "ensure_ready", real)
        await tier.maintain()
        assert tier.ready
    finally:
        await tier.stop()


async def test_a_model_that_fails_to_load_leaves_the_proxy_serving(store_kind: str, tmp_path: Path,
                                                                  embedder: FakeEmbedder, clock: Clock) -> None:
    attempts = []

    async def broken_start() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("model files missing")

    embedder.start = broken_start  # type: ignore[attr-defined]
    tier = make_tier(store_kind, tmp_path, embedder, clock)
    await tier.start()
    try:
        assert not tier.ready
        assert "model failed to load" in (tier._failopen.state("embedding").last_error or "")
        assert await tier.lookup(body(STORED), scope="s", namespace="", request_id="r") is None
        await tier.maintain()  # upkeep tries again
        assert tier.ready and len(attempts) == 2
    finally:
        await tier.stop()


async def test_a_burst_of_stores_is_indexed_without_waiting_for_upkeep(tmp_path: Path, embedder: FakeEmbedder,
                                                                      clock: Clock,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from proxy.semantic import edge

    monkeypatch.setattr(edge, "INDEX_AFTER_WRITES", 3)
    tier = make_tier("edge", tmp_path, embedder, clock, maintenance_interval=3600)
    await tier.start()
    try:
        for text in ("one question", "another question", "a third question"):
            await store(tier, clock, text)
        await tier.flush()
        assert tier.backend._writes_since_optimize == 0  # type: ignore[attr-defined]
    finally:
        await tier.stop()


# -- issue 10.15: feedback is scoped to the tenant, and a remembered request id is never taken over ------------


async def test_feedback_is_scoped_to_the_tenant_that_was_answered(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock)
    probe = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="r1", tenant="alice")
    assert probe is not None and probe.entry is not None
    for other in ("mallory", None):
        with pytest.raises(NotFoundError) as caught:
            await tier.feedback("r1", "wrong", tenant=other)
        assert caught.value.code == "unknown_request_id"  # the same answer as an id never seen: no oracle
    assert await tier.count() == 1
    result = await tier.feedback("r1", "wrong", tenant="alice")
    assert result["evicted"] is True and await tier.count() == 0


async def test_a_remembered_request_id_is_never_taken_over(tier: SemanticCache, clock: Clock) -> None:
    await store(tier, clock)
    await store(tier, clock, "far", scope="s2")
    first = await tier.lookup(body(PARAPHRASE), scope="s", namespace="", request_id="same", tenant="alice")
    assert first is not None and first.entry is not None
    assert tier.book.remembers("same") and not tier.book.remembers("other")
    second = await tier.lookup(body("far"), scope="s2", namespace="", request_id="same", tenant="alice")
    assert second is not None and second.entry is not None  # served, but not remembered under that id
    result = await tier.feedback("same", "wrong", tenant="alice")
    assert result["point_id"] == first.point_id != second.point_id
