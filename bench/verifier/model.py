"""The cross-encoder: all-MiniLM-L6-v2's transformer reading ``[CLS] stored [SEP] asked [SEP]``, mean-pooled,
and one linear unit giving the logit that the stored prompt's answer answers the asked one.

Mean pooling (not [CLS]) because that is what the shipped weights were trained to summarise with. The
tokenisation here is the one :mod:`proxy.semantic.verifier` repeats at run time (same tokenizer.json, same
truncation), so the exported graph sees the inputs it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embedding_service.model_files import bundled_model_path

MAX_LENGTH = 128


def pair_tokenizer(model_path: Path | None = None) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str((model_path or bundled_model_path()) / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_LENGTH, strategy="longest_first")
    tokenizer.no_padding()
    return tokenizer


def encode_pairs(tokenizer: Any, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, attention_mask, token_type_ids (int64, right-padded to the longest pair)."""
    encodings = tokenizer.encode_batch(pairs)
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(pairs), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        ids[row, :n], mask[row, :n], types[row, :n] = e.ids, 1, e.type_ids
    return ids, mask, types


class CrossEncoder(nn.Module):
    def __init__(self, model_path: Path | None = None) -> None:
        super().__init__()
        from transformers import AutoModel

        self.bert = AutoModel.from_pretrained(str(model_path or bundled_model_path()))
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(self.bert.config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        logit: torch.Tensor = self.head(self.dropout(pooled)).squeeze(-1)
        return logit


def load_trained(checkpoint: Path) -> CrossEncoder:
    model = CrossEncoder()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model.eval()


@torch.inference_mode()
def torch_scores(model: CrossEncoder, tokenizer: Any, pairs: list[tuple[str, str]], batch: int = 128,
                 bf16: bool | None = None) -> np.ndarray:
    """Logits for ``pairs`` (length-sorted batches; bf16 autocast where the CPU has it, unless ``bf16``)."""
    from embedding_service.model import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16() if bf16 is None else bf16
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        ids, mask, types = encode_pairs(tokenizer, [pairs[i] for i in chunk])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        out[chunk] = logits.float().numpy()
    return out
