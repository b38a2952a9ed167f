"""ONNX Runtime for the transformer of :class:`embedding_service.model.SentenceEncoder`.

On this project's 2-core machine ONNX Runtime (fp32) runs one short prompt in ~3-4 ms where torch takes
~8-14 ms (fp32 or bf16): torch's per-call dispatch costs more than MiniLM's arithmetic at that size. At
large batches torch bf16 is faster, so the encoder picks per call (see ``EMBED_BACKEND``).

The ONNX graph is exported offline from the very weights torch loaded (``torch.onnx.export``, the
TorchScript exporter: it needs only the ``onnx`` package, not onnxscript) and cached on disk under a
name keyed by a hash of the model's config and weights and the library versions, so later starts load
it in ~0.2 s instead of exporting again (~2 s), also from another install of the same model. The file is
written to a temporary name and renamed, so processes starting together never read a half-written graph;
a cached file that will not load is exported again. After an export, graphs of other keys that no
process has loaded for a week are removed (:mod:`embedding_service.onnx_cache`).

Only the transformer is exported (input_ids, attention_mask, token_type_ids -> last hidden state, with
dynamic batch and sequence axes): mean pooling and normalisation stay in numpy float32, exactly as the
torch path does them. It is traced with eager attention (torch keeps running SDPA) because that is the
pattern ONNX Runtime's BERT optimiser (shipped in the onnxruntime wheel) fuses into Attention,
EmbedLayerNormalization and SkipLayerNormalization nodes: ~18% faster on one prompt than the SDPA graph,
which it cannot fuse. Either step may be skipped if it fails; the agreement check at load judges the result.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from .model_files import ModelFiles
from .onnx_cache import mark_used, prune_stale_graphs, write_atomically

logger = logging.getLogger(__name__)

#: Bump when the exported graph changes (inputs, outputs, opset, export options): old files are ignored.
EXPORT_FORMAT = 2
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
DEFAULT_CACHE_DIR = Path("~/.cache/cachegate/onnx")


class OnnxUnavailableError(RuntimeError):
    """The ONNX graph could not be exported, loaded or trusted; the caller keeps torch."""


def default_threads() -> int:
    """Cores this process may run on (cgroup/affinity aware where the OS says), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def model_key(files: ModelFiles) -> str:
    """A short hash of what the exported graph depends on: the model's config and weight files (by name
    and content) and the versions of the libraries that trace, write and run it.

    By content, not modification time: every install of the model package (a fresh venv, a clean
    clone) gives the same weights a new mtime, which exported a new 90 MB graph each time. sha256 of
    the 91 MB safetensors costs ~0.1 s on this project's 2-core machine (its CPU has SHA instructions;
    the file is warm, as right after torch loaded it), against ~2 s for an export and ~0.2 s for a load
    of the cached graph: cheap enough to hash all of it rather than trust a sample of chunks."""
    digest = hashlib.sha256(f"format={EXPORT_FORMAT};opset={OPSET}".encode())
    for package in ("torch", "transformers", "onnx", "onnxruntime"):
        digest.update(f";{package}={_version(package)}".encode())
    for name in ("config.json", "sentence_bert_config.json"):
        path = files.path / name
        if path.is_file():
            digest.update(name.encode() + b"=" + path.read_bytes())
    for path in sorted(files.path.iterdir()):
        if path.suffix in (".safetensors", ".bin", ".pt", ".pth") and path.is_file():
            with path.open("rb") as weights:
                content = hashlib.file_digest(weights, "sha256").hexdigest()
            digest.update(f";{path.name}:{content}".encode())
    return digest.hexdigest()[:20]


#: Names :func:`quantize_int8`'s recipe in the cached file's name, so a graph an earlier recipe wrote is not reused.
INT8_RECIPE = "int8-b128"
INT8_BLOCK = 128


def cache_path(files: ModelFiles, cache_dir: Path | str | None, *, int8: bool = False,
               key: str | None = None) -> Path:
    """Where the graph for ``files`` is cached; ``key`` is their :func:`model_key` when the caller has it
    already (it hashes the weights: one load that tries both precisions computes it once)."""
    directory = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
    return directory / f"{files.name}-{key or model_key(files)}{'-' + INT8_RECIPE if int8 else ''}.onnx"


def quantize_int8(graph: bytes) -> bytes:
    """``graph`` with its MatMul weights in int8, in blocks of :data:`INT8_BLOCK` along the inner dimension,
    each with its own scale (``MatMulNBits``), computed in int8 with activations quantised per row and block
    (accuracy level 4); the fused attention and the embedding tables stay float32.

    Why this recipe (measured on the 2-core machine against torch float32, one prompt a call, and in padded
    batches of 32): it agrees to cosine 0.996 at worst on one- and two-word chat texts ("thanks", "hi
    there") and 0.999 on dev prompts, ~15% faster than float32 per short prompt. Dynamic quantisation
    (``quantize_dynamic``: one activation scale per call) was up to 1.6x faster but agreed only to 0.956
    on those short texts, 0.974 even with the feed-forward output projections left in float32: with a few
    tokens the [CLS]/[SEP] rows set the scale. Blocks of 64 agree a little better and run slower; 256
    the other way round."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load_from_string(graph), bits=8, block_size=INT8_BLOCK,
                                     is_symmetric=True, accuracy_level=4)
    quantizer.process()
    data: bytes = quantizer.model.model.SerializeToString()
    return data


def export_transformer(transformer: Any) -> bytes:
    """The float32 ``transformer`` (a Hugging Face BERT module) as a serialised ONNX graph, fused for
    ONNX Runtime where its optimiser recognises the model."""
    previous = getattr(getattr(transformer, "config", None), "_attn_implementation", None)
    switched = False
    if previous not in (None, "eager") and hasattr(transformer, "set_attn_implementation"):
        try:
            transformer.set_attn_implementation("eager")
            switched = True
        except Exception as exc:  # older transformers, or a model that only has one implementation
            logger.info("tracing %s attention as is (%r)", previous, exc)
    try:
        graph = _trace(transformer)
    finally:
        if switched:
            transformer.set_attn_implementation(previous)
    return _fuse(graph, transformer.config)


def _fuse(graph: bytes, config: Any) -> bytes:
    """``graph`` with ONNX Runtime's BERT fusions applied (portable ONNX + com.microsoft ops, no
    hardware-specific rewrites: opt_level 0), or unchanged if the optimiser fails."""
    try:
        import onnx
        from onnxruntime.transformers.optimizer import optimize_model

        # Its modules log each fusion at INFO under top-level names (fusion_base, onnx_model, ...).
        for name in list(logging.root.manager.loggerDict):
            if name.startswith(("fusion", "onnx_model")):
                logging.getLogger(name).setLevel(logging.WARNING)
        fused = optimize_model(onnx.load_from_string(graph), model_type="bert",
                               num_heads=int(config.num_attention_heads), hidden_size=int(config.hidden_size),
                               opt_level=0)
        data: bytes = fused.model.SerializeToString()
        return data
    except Exception as exc:
        logger.info("ONNX Runtime's BERT fusions were not applied (%r); using the graph as traced", exc)
        return graph


def _trace(transformer: Any) -> bytes:
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    # Traced on a padded batch of two, so that the attention mask is part of the graph (an all-ones mask
    # may be optimised away by transformers while tracing).
    input_ids = torch.full((2, 8), 1000, dtype=torch.int64)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    buffer = io.BytesIO()
    target: Any = buffer  # the TorchScript exporter writes to file objects too; its annotation says paths
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one (which needs onnxscript and
        # ~10x longer here); its tracer warnings are about shape checks that hold for every input.
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHiddenState(transformer).eval(), (input_ids, attention_mask, torch.zeros_like(input_ids)),
                          target, input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


class OnnxTransformer:
    """An ONNX Runtime session computing the transformer's last hidden state (float32, CPU)."""

    def __init__(self, model: str | bytes, *, threads: int | None = None, source: str = "") -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads sleep instead of spinning: on 2 cores shared with the event loop (and other
        # processes), spinning measured ~1.5x slower per call and ~2x the CPU; on an idle machine it saves <1 ms.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: ORT warns about every unused initializer
        self.threads = options.intra_op_num_threads
        self.source = source  # the cache file, or "memory" when it could not be written
        self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        names = tuple(node.name for node in self._session.get_inputs())
        if names != INPUT_NAMES:
            raise OnnxUnavailableError(f"the ONNX graph takes {names}, expected {INPUT_NAMES}")

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self._session.run([OUTPUT_NAME], feeds)[0]


def load_or_export(files: ModelFiles, transformer: Any, *, cache_dir: Path | str | None,
                   threads: int | None, reexport: bool = False, int8: bool = False,
                   key: str | None = None) -> tuple[OnnxTransformer, bool]:
    """A session on the cached graph for ``files``, exporting it from the float32 ``transformer`` first
    when there is none (or ``reexport``). Returns the session and whether it was exported now.

    A cached file that does not load is replaced by a fresh export. A cache directory that cannot be
    written only costs the cache: the session is built from the exported bytes in memory.
    Raises :class:`OnnxUnavailableError` when no session can be had. ``int8`` quantises the export
    (:func:`quantize_int8`) and caches it under its own name. ``key``: see :func:`cache_path`.
    """
    try:
        path: Path | None = cache_path(files, cache_dir, int8=int8, key=key)
    except (OSError, RuntimeError) as exc:  # RuntimeError: expanduser without a home directory
        logger.warning("no cache directory for the ONNX graph (%s); it is exported at every start", exc)
        path = None
    if path is not None and not reexport and path.is_file():
        try:
            cached = OnnxTransformer(str(path), threads=threads, source=str(path))
        except Exception as exc:  # onnxruntime raises its own exception types for a damaged file
            logger.warning("the cached ONNX graph %s does not load (%s); exporting it again", path, exc)
        else:
            mark_used(path)  # so that another install's export does not prune it as stale
            return cached, False
    started = time.perf_counter()
    try:
        graph = export_transformer(transformer)
        if int8:
            graph = quantize_int8(graph)
    except Exception as exc:
        raise OnnxUnavailableError(f"exporting {files.name} to ONNX failed: {exc!r}") from exc
    logger.info("exported %s to ONNX in %.1f s", files.name, time.perf_counter() - started)
    source = "memory"
    if path is not None:
        try:
            write_atomically(path, graph)
            source = str(path)
            prune_stale_graphs(path, files.name)  # now: an export is when a new key has appeared
        except OSError as exc:
            logger.warning("cannot cache the ONNX graph at %s (%s); it is exported again at the next start",
                           path, exc)
    try:
        return OnnxTransformer(graph, threads=threads, source=source), True
    except Exception as exc:
        raise OnnxUnavailableError(f"the exported ONNX graph does not load: {exc!r}") from exc
