"""Settings of the embedding service: read once from the environment, validated, frozen.

The parsers (:mod:`embedding_service.envspec`) are shared with the proxy's settings, so both services phrase a
bad value the same way; a bad value raises :class:`~embedding_service.errors.SettingsError` naming the
variable, which stops start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .envspec import (
    Spec,
    float_in,
    int_in,
    one_of,
    parse_bool,
    parse_log_level,
    parse_optional_str,
    parse_str,
    read_env,
)
from .model import DEFAULT_ONNX_MAX_BATCH

SPECS: tuple[Spec, ...] = (
    Spec("EMBED_HOST", parse_str, "127.0.0.1", "Interface the embedding service listens on."),
    Spec("EMBED_PORT", int_in(0, 65535), 8001, "Port the embedding service listens on."),
    Spec("EMBED_BATCH_WINDOW_MS", float_in(0, 1000), 2.0,
         "Milliseconds concurrent requests are gathered into one model call."),
    Spec("EMBED_MAX_BATCH", int_in(1, 4096), 64, "Most texts encoded in one model call."),
    Spec("EMBED_MAX_INPUTS", int_in(1, 100_000), 256, "Most texts accepted in one request."),
    Spec("EMBED_MAX_CHARS", int_in(1, 10_000_000), 20_000, "Longest text accepted, in characters."),
    Spec("EMBED_TORCH_THREADS", int_in(0, 1024), 0, "Torch intra-op threads; 0 keeps torch's default."),
    Spec("EMBED_PRECISION", one_of("auto", "fp32", "bf16"), "auto",
         "Weights' precision; auto: bf16 where the CPU has it natively (~1.5x faster, cosine >= 0.999)."),
    Spec("EMBED_BACKEND", one_of("auto", "torch", "onnx"), "auto",
         "What runs the transformer; auto: ONNX Runtime for small calls, torch for large batches."),
    Spec("EMBED_ONNX_MAX_BATCH", int_in(1, 4096), DEFAULT_ONNX_MAX_BATCH,
         "With EMBED_BACKEND=auto, calls of at most this many texts run on ONNX Runtime."),
    Spec("EMBED_ONNX_INT8", parse_bool, True,
         "ONNX Runtime runs int8 matrix products (~15% faster a short text), used only if they agree with "
         "float32 to cosine >= 0.99 at load; off: float32."),
    Spec("EMBED_ONNX_THREADS", int_in(0, 1024), 0, "ONNX Runtime intra-op threads; 0: one per usable core."),
    Spec("EMBED_CACHE_DIR", parse_optional_str, None,
         "Where the exported ONNX graph is cached; unset: ~/.cache/cachegate/onnx."),
    Spec("EMBED_MODEL_PATH", parse_optional_str, None,
         "sentence-transformers model directory; unset: the bundled all-MiniLM-L6-v2."),
    Spec("LOG_LEVEL", parse_log_level, "INFO", "debug, info, warning, error or critical."),
)


@dataclass(frozen=True)
class EmbedSettings:
    host: str = "127.0.0.1"
    port: int = 8001
    batch_window_ms: float = 2.0
    max_batch: int = 64
    max_inputs: int = 256
    max_chars: int = 20_000
    torch_threads: int = 0
    precision: str = "auto"
    backend: str = "auto"
    onnx_max_batch: int = DEFAULT_ONNX_MAX_BATCH
    onnx_int8: bool = True
    onnx_threads: int = 0
    cache_dir: str | None = None
    model_path: str | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmbedSettings:
        """Build settings from ``environ`` (default ``os.environ``); unset or empty values keep defaults."""
        return cls(**read_env(SPECS, environ, attr=_attr))

    def replace(self, **changes: Any) -> EmbedSettings:
        return dataclasses.replace(self, **changes)


def _attr(spec: Spec) -> str:
    # EMBED_BATCH_WINDOW_MS -> batch_window_ms; LOG_LEVEL (shared with the proxy) keeps its name.
    return spec.env.removeprefix("EMBED_").lower()
