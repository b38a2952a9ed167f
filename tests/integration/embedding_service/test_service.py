"""The embedding service over real HTTP with the real model, and both Embedder implementations."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from embedding_service.app import create_app
from embedding_service.client import HttpEmbedder
from embedding_service.errors import EmbeddingError
from embedding_service.local import LocalEmbedder
from embedding_service.model import SentenceEncoder
from embedding_service.settings import EmbedSettings
from tests.support.servers import ServerThread, free_port

from .conftest import AUTO_BACKEND, wait_until_healthy

RESET = "How do I reset my password?"
CHANGE = "How can I change my password?"
FRANCE = "What is the capital of France?"


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b))


def embed_over_http(http: httpx.Client, texts: list[str]) -> list[list[float]]:
    response = http.post("/embed", json={"input": texts})
    assert response.status_code == 200, response.text
    return [item["embedding"] for item in response.json()["data"]]


def test_health_reports_the_loaded_model_and_backend(http: httpx.Client) -> None:
    http.post("/embed", json={"input": [RESET]})  # one text: ONNX Runtime under the default backend
    response = http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "model", "dim", "backend")} == {
        "status": "ok", "model": "all-MiniLM-L6-v2", "dim": 384, "backend": AUTO_BACKEND}
    if AUTO_BACKEND == "onnx+torch":
        assert body["onnx_max_batch"] == 4 and body["precision"] == "bf16"  # torch's, for large batches
    assert body["texts_by_backend"]["onnx"] >= 1
    assert "onnx_error" not in body


def test_embed_returns_384_dimensional_unit_vectors_in_order(http: httpx.Client) -> None:
    response = http.post("/embed", json={"input": [RESET, CHANGE, FRANCE]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model"] == "all-MiniLM-L6-v2" and body["dim"] == 384
    assert [item["index"] for item in body["data"]] == [0, 1, 2]
    for item in body["data"]:
        assert len(item["embedding"]) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in item["embedding"])), 1.0, abs_tol=1e-5)


def test_paraphrases_are_closer_than_unrelated_sentences(http: httpx.Client) -> None:
    reset, change, france = embed_over_http(http, [RESET, CHANGE, FRANCE])
    paraphrase, unrelated = cosine(reset, change), cosine(reset, france)
    # Measured with all-MiniLM-L6-v2: about 0.86 and 0.07.
    assert paraphrase > 0.75 > 0.25 > unrelated


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(http: httpx.Client) -> None:
    alone = embed_over_http(http, [FRANCE])[0]
    batched = embed_over_http(http, [RESET, "a much longer text " * 20, FRANCE])[2]
    assert cosine(alone, batched) > 0.9995  # bf16 weights: padding shifts results by ~1e-4 at most


def test_openai_embeddings_shape(http: httpx.Client) -> None:
    response = http.post("/v1/embeddings", json={"input": RESET, "model": "anything"})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert body["usage"] == {"prompt_tokens": 9, "total_tokens": 9}  # 7 wordpieces + [CLS] + [SEP]
    [item] = body["data"]
    assert item["object"] == "embedding" and item["index"] == 0 and len(item["embedding"]) == 384

    listed = http.post("/v1/embeddings", json={"input": [RESET, FRANCE]}).json()
    assert [entry["index"] for entry in listed["data"]] == [0, 1]
    assert cosine(listed["data"][0]["embedding"], item["embedding"]) > 0.9995


def test_the_openai_client_works_against_it(service: ServerThread, http: httpx.Client) -> None:
    # The official client asks for base64 float32 by default and decodes it itself.
    client = openai.OpenAI(base_url=f"{service.url}/v1", api_key="unused", max_retries=0)
    answer = client.embeddings.create(model="all-MiniLM-L6-v2", input=[RESET, FRANCE])
    expected = embed_over_http(http, [RESET, FRANCE])
    assert [len(item.embedding) for item in answer.data] == [384, 384]
    for got, want in zip(answer.data, expected, strict=True):
        assert cosine(got.embedding, want) > 0.9999
    assert answer.usage.prompt_tokens == 9 + 9


BAD_BODIES: list[tuple[Any, str]] = [
    (b"{oops", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    ({"texts": ["a"]}, "'input' is required"),
    ({"input": 42}, "'input' must be"),
    ({"input": ["fine", ["nested"]]}, "'input[1]' must be a string"),
    ({"input": []}, "must not be an empty list"),
    ({"input": ["x"] * 257}, "'input' has 257 items; at most 256"),
    ({"input": ["ok", "y" * 20_001]}, "'input[1]' has 20001 characters; at most 20000"),
    ({"input": ["ok", ""]}, "'input[1]' is an empty string"),
]


@pytest.mark.parametrize("path", ["/embed", "/v1/embeddings"])
@pytest.mark.parametrize(("body", "words"), BAD_BODIES)
def test_bad_input_is_a_400_naming_the_problem(http: httpx.Client, path: str, body: Any, words: str) -> None:
    if isinstance(body, bytes):
        response = http.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = http.post(path, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert words in error["message"]
    assert error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_routes_answer_in_the_same_error_shape(http: httpx.Client) -> None:
    response = http.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


class GatedEncoder(SentenceEncoder):
    """The real encoder whose load waits for a signal, so the 'loading' state can be observed."""

    def __init__(self, cache_dir: Path) -> None:
        super().__init__(cache_dir=cache_dir)
        self.release = threading.Event()

    def load(self) -> None:
        self.release.wait(30)
        super().load()


def test_while_the_model_loads_health_and_embed_answer_503(onnx_cache_dir: Path) -> None:
    encoder = GatedEncoder(onnx_cache_dir)
    with ServerThread(create_app(EmbedSettings(), encoder=encoder)) as server:
        try:
            health = httpx.get(f"{server.url}/health")
            assert (health.status_code, health.json()) == (503, {"status": "loading"})
            refused = httpx.post(f"{server.url}/embed", json={"input": ["hi"]})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "model_loading"
            assert "loading" in refused.json()["error"]["message"]
        finally:
            encoder.release.set()
        wait_until_healthy(server.url)
        assert httpx.post(f"{server.url}/embed", json={"input": ["hi"]}).status_code == 200


async def test_http_embedder_embeds_pings_and_counts(service: ServerThread, http: httpx.Client) -> None:
    embedder = HttpEmbedder(service.url, timeout=10)
    try:
        assert (embedder.name, embedder.dim) == ("embedding-service", 384)
        await embedder.ping()
        vectors = await embedder.embed([RESET, FRANCE])
        assert [cosine(a, b) for a, b in zip(vectors, embed_over_http(http, [RESET, FRANCE]), strict=True)] \
            == pytest.approx([1.0, 1.0], abs=1e-6)
        assert await embedder.embed([]) == []
        assert embedder.count_tokens(RESET) == 9
    finally:
        await embedder.aclose()


async def test_concurrent_requests_each_get_their_own_vectors(service: ServerThread, http: httpx.Client) -> None:
    texts = [f"Question number {i}: where is my order {i * 7}?" for i in range(40)]
    expected = embed_over_http(http, texts)
    embedder = HttpEmbedder(service.url, timeout=30)
    try:
        answers = await asyncio.gather(*(embedder.embed([text]) for text in texts))
    finally:
        await embedder.aclose()
    # Each its own text's vector: nearer to it than to any other text's (0.92 at most between these texts),
    # and within the bar any two of the encoder's ways of running agree to. The 40 texts at once ran on
    # torch (float32); alone or in small batches they run on int8 ONNX (0.99948 seen): cosine ≥ 0.9995
    # failed once in CI.
    for index, (got,) in enumerate(answers):
        similarities = [cosine(got, want) for want in expected]
        assert max(range(len(texts)), key=similarities.__getitem__) == index
        assert similarities[index] >= SentenceEncoder.onnx_int8_min_agreement


async def test_http_embedder_raises_embedding_error_when_the_server_is_gone(encoder: SentenceEncoder) -> None:
    server = ServerThread(create_app(EmbedSettings(), encoder=encoder))
    server.start()
    wait_until_healthy(server.url)
    embedder = HttpEmbedder(server.url, timeout=5)
    try:
        assert len((await embedder.embed([RESET]))[0]) == 384
        server.stop()
        with pytest.raises(EmbeddingError, match="unreachable") as caught:
            await embedder.embed([RESET])
        assert isinstance(caught.value.__cause__, httpx.HTTPError)
        with pytest.raises(EmbeddingError):
            await embedder.ping()
    finally:
        server.stop()
        await embedder.aclose()


async def test_http_embedder_raises_embedding_error_on_timeout_and_on_refusals(service: ServerThread) -> None:
    hasty = HttpEmbedder(service.url, timeout=0.000_001)
    never = HttpEmbedder(f"http://127.0.0.1:{free_port()}", timeout=1)
    picky = HttpEmbedder(service.url, timeout=10)
    try:
        with pytest.raises(EmbeddingError, match="took longer than"):
            await hasty.embed([RESET])
        with pytest.raises(EmbeddingError, match="unreachable"):
            await never.embed([RESET])
        with pytest.raises(EmbeddingError, match=r"400.*at most 20000"):
            await picky.embed(["z" * 20_001])
    finally:
        for embedder in (hasty, never, picky):
            await embedder.aclose()


async def test_local_embedder_matches_the_service(encoder: SentenceEncoder, http: httpx.Client) -> None:
    texts = [RESET, CHANGE, FRANCE, "Ünïcödé and emoji 🙂 are fine too."]
    local = LocalEmbedder(encoder)
    await local.start()
    try:
        assert (local.name, local.dim) == ("embedded", 384)
        await local.ping()
        vectors = await local.embed(texts)
        assert local.count_tokens(RESET) == 9
    finally:
        await local.aclose()
    for got, want in zip(vectors, embed_over_http(http, texts), strict=True):
        assert cosine(got, want) > 0.9999
    with pytest.raises(EmbeddingError, match="not running"):
        await local.embed([RESET])
