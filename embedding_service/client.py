"""The :class:`proxy.contracts.Embedder` that calls the embedding service over HTTP (EMBEDDING_URL set).

Every failure — timeout, refused connection, non-200, a malformed answer — becomes
:class:`embedding_service.errors.EmbeddingError`, on which the proxy skips the semantic tier instead of failing the
request. ``timeout`` bounds the whole call, not each phase: it is the latency the cache may add.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from .errors import EmbeddingError
from .model_files import ModelFiles, TokenCounter

COMPONENT = "embedding"


class HttpEmbedder:
    name = "embedding-service"
    remote = True

    def __init__(self, base_url: str, *, timeout: float = 0.5, model_path: Path | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        files = ModelFiles.read(model_path)
        self.dim: int = files.dim
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._model_path = files.path
        self._token_counter: TokenCounter | None = None
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout),
                                         transport=transport,
                                         headers={"content-type": "application/json"})

    @property
    def location(self) -> str:
        return self.base_url

    async def start(self) -> None:
        return None  # the service loads its own model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []  # the service rejects an empty list; there is nothing to ask it
        body = await self._call("POST", "/embed", orjson.dumps({"input": list(texts)}))
        try:
            vectors = [item["embedding"] for item in sorted(body["data"], key=lambda item: item["index"])]
        except (KeyError, TypeError) as exc:
            raise EmbeddingError(COMPONENT, f"malformed answer from {self.base_url}/embed") from exc
        if len(vectors) != len(texts) or any(len(vector) != self.dim for vector in vectors):
            raise EmbeddingError(COMPONENT, f"{self.base_url}/embed answered {len(vectors)} vectors "
                                            f"for {len(texts)} texts or not {self.dim}-d")
        return vectors

    def count_tokens(self, text: str) -> int:
        # Loaded on first use: only the tokenizer (tens of ms), never the model.
        if self._token_counter is None:
            self._token_counter = TokenCounter(self._model_path)
        return self._token_counter.count(text)

    async def ping(self) -> None:
        body = await self._call("GET", "/health", None)
        if body.get("dim") != self.dim:
            raise EmbeddingError(COMPONENT, f"{self.base_url} serves {body.get('dim')}-d vectors, "
                                            f"expected {self.dim}")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, content: bytes | None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.request(method, path, content=content)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise EmbeddingError(COMPONENT, f"{url} took longer than {self.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise EmbeddingError(COMPONENT, f"{url} unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise EmbeddingError(COMPONENT, f"{url} answered {response.status_code}: "
                                            f"{_error_message(response.content)}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise EmbeddingError(COMPONENT, f"{url} answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise EmbeddingError(COMPONENT, f"{url} answered JSON that is not an object")
        return body


def _error_message(content: bytes) -> str:
    """The service's OpenAI-style error message, or the start of whatever it sent."""
    try:
        message = orjson.loads(content)["error"]["message"]
        if isinstance(message, str):
            return message
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    return content[:200].decode("utf-8", "replace")
