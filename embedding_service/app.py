"""The embedding service: a small Starlette app around :class:`LocalEmbedder`.

The model loads in the background after start-up so that the process answers at once: ``/health`` says
503 ``loading`` until the model is ready (orchestrators and the proxy's ping wait on it), and the
embedding routes answer 503 meanwhile instead of queueing behind a multi-second load.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from array import array
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import ModelNotReadyError, PayloadTooLargeError, ServiceError
from .local import LocalEmbedder
from .model import SentenceEncoder
from .settings import EmbedSettings
from .validation import InputLimits, openai_options, parse_object, texts_from

logger = logging.getLogger(__name__)

# Token counting for usage runs on a thread above this many characters: the Rust tokenizer takes
# ~1 ms per 10k characters and a maximal request (256 x 20k) would otherwise stall the event loop.
_INLINE_TOKENIZE_CHARS = 50_000


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


class EmbeddingService:
    """Request handlers and the model's lifecycle; one per app, no module-level state."""

    def __init__(self, settings: EmbedSettings, encoder: SentenceEncoder | None = None) -> None:
        self.settings = settings
        if encoder is None:
            encoder = make_encoder(settings)
        self.embedder = LocalEmbedder(encoder, window_ms=settings.batch_window_ms,
                                      max_batch=settings.max_batch)
        self.limits = InputLimits(max_inputs=settings.max_inputs, max_chars=settings.max_chars)
        # Worst case of a valid body: every character escaped as \\uXXXX, plus the JSON around it.
        self.max_body_bytes = settings.max_inputs * (settings.max_chars * 6 + 16) + 65_536
        self.load_error: str | None = None
        self._load_task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._load_task = asyncio.create_task(self._load(), name="embedding-model-load")
        try:
            yield
        finally:
            if not self._load_task.done():
                self._load_task.cancel()  # the thread finishes its load; nobody waits for it
            await self.embedder.aclose()

    async def _load(self) -> None:
        try:
            await self.embedder.start()
        except Exception as exc:  # keep serving /health so the failure is visible, not a dead port
            self.load_error = repr(exc)
            logger.exception("the embedding model failed to load")

    async def health(self, request: Request) -> Response:
        if self.embedder.ready:
            batcher, encoder = self.embedder.batcher, self.embedder.encoder
            body: dict[str, Any] = {"status": "ok", "model": self.embedder.model, "dim": self.embedder.dim,
                                    "backend": encoder.backend, "precision": encoder.precision}
            if encoder.onnx_precision is not None:
                body["onnx_precision"] = encoder.onnx_precision
            if encoder.backend == "onnx+torch":
                body["onnx_max_batch"] = encoder.onnx_max_batch
            if encoder.onnx_error is not None:
                body["onnx_error"] = encoder.onnx_error
            body |= {"batches": batcher.batches_encoded, "texts": batcher.texts_encoded,
                     "texts_by_backend": dict(encoder.texts_by_backend)}
            return json_response(body)
        if self.load_error is not None:
            return json_response({"status": "failed", "error": self.load_error}, 503)
        return json_response({"status": "loading"}, 503)

    async def embed(self, request: Request) -> Response:
        payload = parse_object(await self._read_body(request))
        texts = texts_from(payload, self.limits, allow_single_string=False)
        vectors = await self._vectors(texts)
        return json_response({"model": self.embedder.model, "dim": self.embedder.dim,
                              "data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]})

    async def openai_embeddings(self, request: Request) -> Response:
        payload = parse_object(await self._read_body(request))
        texts = texts_from(payload, self.limits, allow_single_string=True)
        options = openai_options(payload, self.embedder.dim)
        vectors = await self._vectors(texts)
        tokens = await self._usage_tokens(texts)
        data = [{"object": "embedding", "index": i,
                 "embedding": _base64_floats(v) if options.encoding_format == "base64" else v}
                for i, v in enumerate(vectors)]
        return json_response({"object": "list", "data": data, "model": self.embedder.model,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _vectors(self, texts: list[str]) -> list[list[float]]:
        if not self.embedder.ready:
            detail = f"failed to load: {self.load_error}" if self.load_error else "is still loading"
            raise ModelNotReadyError(f"the embedding model {detail}; retry shortly")
        return await self.embedder.embed(texts)

    async def _usage_tokens(self, texts: list[str]) -> int:
        # The model reads at most max_tokens of each text, so that is what it was "charged" for.
        if sum(map(len, texts)) > _INLINE_TOKENIZE_CHARS:
            counts = await asyncio.to_thread(self.embedder.count_tokens_many, texts)
        else:
            counts = self.embedder.count_tokens_many(texts)
        return sum(min(count, self.embedder.encoder.max_tokens) for count in counts)

    async def _read_body(self, request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLargeError(f"the request body exceeds {self.max_body_bytes} bytes",
                                           param="input")
            chunks.append(chunk)
        return b"".join(chunks)


def make_encoder(settings: EmbedSettings) -> SentenceEncoder:
    """The (not yet loaded) encoder the settings describe."""
    return SentenceEncoder(Path(settings.model_path) if settings.model_path else None,
                           torch_threads=settings.torch_threads or None, precision=settings.precision,
                           backend=settings.backend, onnx_max_batch=settings.onnx_max_batch,
                           onnx_threads=settings.onnx_threads or None, cache_dir=settings.cache_dir,
                           onnx_int8=settings.onnx_int8)


def _base64_floats(vector: list[float]) -> str:
    # OpenAI's base64 encoding is the raw little-endian float32 array; array('f') is native-endian,
    # which is little-endian on every platform this runs on (x86-64, arm64).
    return base64.b64encode(array("f", vector).tobytes()).decode("ascii")


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return Response(exc.to_body(), status_code=exc.status_code, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    body = {"error": {"message": f"{request.method} {request.url.path}: {exc.detail}", "type": error_type,
                      "param": None, "code": None}}
    return Response(orjson.dumps(body), status_code=exc.status_code, media_type="application/json",
                    headers=exc.headers)


def create_app(settings: EmbedSettings | None = None, *, encoder: SentenceEncoder | None = None) -> Starlette:
    """The service app. ``encoder`` lets tests share one already-loaded model between apps."""
    service = EmbeddingService(settings if settings is not None else EmbedSettings.from_env(), encoder)
    app = Starlette(
        routes=[
            Route("/health", service.health, methods=["GET"]),
            Route("/embed", service.embed, methods=["POST"]),
            Route("/v1/embeddings", service.openai_embeddings, methods=["POST"]),
        ],
        lifespan=service.lifespan,
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
    )
    app.state.service = service
    return app
