"""The in-process model, loaded once per process whichever app (or test proxy) asks for it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedding_service.model import SentenceEncoder

#: Milliseconds the in-process embedder gathers concurrent prompts into one model call. The proxy embeds
#: one prompt per request on its hot path, so it does not wait: under load, batches form by themselves
#: while the previous one encodes.
LOCAL_BATCH_WINDOW_MS = 0.0

_encoder_lock = threading.Lock()
_encoders: dict[tuple[str, bool], SentenceEncoder] = {}


def shared_encoder(model_path: str | None = None, *, onnx_int8: bool = True) -> SentenceEncoder:
    """One :class:`SentenceEncoder` per model directory (and ONNX precision) per process: every app (and
    every test proxy) shares the loaded weights instead of loading 90 MB again."""
    from embedding_service.model import SentenceEncoder  # torch and the model: imported only when used

    key = (model_path or "", onnx_int8)
    with _encoder_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            encoder = _encoders[key] = SentenceEncoder(Path(model_path) if model_path else None,
                                                       onnx_int8=onnx_int8)
        return encoder
