"""The ONNX Runtime backend with the real model: agreement with torch, the export cache, falling back, and
which backend runs what. The session encoder exported the graph once; tests that need another export
(a damaged cache, an unwritable cache, a graph that must be refused) do exactly one each."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from embedding_service import onnx_backend
from embedding_service.app import create_app
from embedding_service.model import SentenceEncoder
from embedding_service.model_files import MODEL_NAME, ModelFiles
from embedding_service.settings import EmbedSettings
from tests.support.servers import ServerThread

from .conftest import AUTO_BACKEND, wait_until_healthy

TEXTS = [
    "How do I reset my password?",
    "ok",
    "Ünïcödé, emoji 🙂 and 日本語 go through the same wordpiece tokenizer.",
    "Summarise the attached quarterly report in three bullet points for the board, please.",
    # Past the model's 256-token window, by a little and by a lot: both backends truncate the same way.
    " ".join(f"item{i}" for i in range(150)),
    "A long support ticket about a failed invoice payment and a refund request. " * 40,
    "Short again.",
    "Why was my card declined yesterday?",
    "Where is my order number 12345?",
    "Can I change the delivery address after checkout?",
]


def cosines(a: list[list[float]], b: list[list[float]]) -> list[float]:
    return [sum(x * y for x, y in zip(u, v, strict=True)) for u, v in zip(a, b, strict=True)]


def cached_graph(directory: Path) -> Path:
    graphs = list(directory.glob("*.onnx"))
    assert len(graphs) == 1, graphs
    return graphs[0]


@pytest.fixture(scope="module")
def onnx_encoder(encoder: SentenceEncoder, onnx_cache_dir: Path) -> SentenceEncoder:
    """backend="onnx" (every call on ONNX Runtime; int8, the default), loaded after the session encoder
    cached the graph."""
    loaded = SentenceEncoder(backend="onnx", cache_dir=onnx_cache_dir)
    loaded.load()
    return loaded


@pytest.fixture(scope="module")
def onnx_fp32(tmp_path_factory: pytest.TempPathFactory) -> SentenceEncoder:
    """backend="onnx" with the float32 graph (EMBED_ONNX_INT8=false), in a cache of its own."""
    loaded = SentenceEncoder(backend="onnx", onnx_int8=False, cache_dir=tmp_path_factory.mktemp("fp32-cache"))
    loaded.load()
    return loaded


class Unpleasable(SentenceEncoder):
    """The real encoder with an agreement bar no graph can clear, so ONNX must be refused."""

    onnx_min_agreement = 1.01


class Int8Unpleasable(SentenceEncoder):
    """The real encoder with an int8 bar no graph can clear: float32 ONNX must run instead."""

    onnx_int8_min_agreement = 1.01


def agreement_of(onnx: SentenceEncoder, torch_fp32: SentenceEncoder) -> tuple[float, float, list[float]]:
    """The lowest cosine to torch float32 of ``onnx``'s vectors for TEXTS batched and alone, and the latter."""
    assert onnx.count_tokens(TEXTS[4]) > 256 and onnx.count_tokens(TEXTS[5]) > 256
    reference = torch_fp32.encode(TEXTS)
    batched = onnx.encode(TEXTS)  # 10 texts: above the auto crossover, still ONNX under "onnx"
    alone = [onnx.encode([text])[0] for text in TEXTS]
    assert onnx.texts_by_backend["torch"] == 0
    # A text and the same text with more beyond token 256 get the same vector: the rest is not read.
    longer = onnx.encode([TEXTS[5] + " And one more sentence that the model never reads."])[0]
    assert cosines([longer], [alone[5]])[0] > 0.99999
    return min(cosines(batched, reference)), min(cosines(alone, reference)), alone


def test_float32_onnx_agrees_with_torch_float32_batched_alone_and_past_the_window(
        onnx_fp32: SentenceEncoder, torch_fp32: SentenceEncoder) -> None:
    assert onnx_fp32.onnx_precision == "fp32"
    batched, alone, _ = agreement_of(onnx_fp32, torch_fp32)
    assert batched >= 0.999 and alone >= 0.999
    assert onnx_fp32.onnx_agreement is not None and onnx_fp32.onnx_agreement >= 0.999


def test_int8_onnx_agrees_with_torch_float32_to_the_products_bar(onnx_encoder: SentenceEncoder,
                                                                 torch_fp32: SentenceEncoder) -> None:
    assert onnx_encoder.onnx_precision == "int8"
    batched, alone, vectors = agreement_of(onnx_encoder, torch_fp32)
    assert batched >= 0.99 and alone >= 0.99  # measured 0.997 on these
    assert onnx_encoder.onnx_agreement is not None and onnx_encoder.onnx_agreement >= 0.99
    # Activations are quantised per row: a batch's padding barely moves a vector (measured 0.99994).
    assert min(cosines(onnx_encoder.encode(TEXTS), vectors)) > 0.9995


def test_the_int8_graph_holds_int8_weights_and_keeps_the_fusions(encoder: SentenceEncoder,
                                                                 onnx_cache_dir: Path) -> None:
    import onnx

    graph = onnx.load(str(cached_graph(onnx_cache_dir)))
    kinds = [node.op_type for node in graph.graph.node]
    assert kinds.count("MatMulNBits") == 18 and kinds.count("MatMul") == 0  # 3 a layer, 6 layers
    assert kinds.count("Attention") == 6 and kinds.count("SkipLayerNormalization") == 12
    nbits = next(node for node in graph.graph.node if node.op_type == "MatMulNBits")
    assert {a.name: a.i for a in nbits.attribute if a.name in ("bits", "block_size", "accuracy_level")} == {
        "bits": 8, "block_size": 128, "accuracy_level": 4}


def test_an_int8_graph_that_disagrees_gives_way_to_float32(onnx_fp32: SentenceEncoder, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture,
                                                           torch_fp32: SentenceEncoder,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(fp32_graph(onnx_fp32), tmp_path)  # float32 from the cache; int8 exported, then refused
    encoder = Int8Unpleasable(backend="onnx", cache_dir=tmp_path)
    hashed: list[str] = []  # the weights are hashed for the cache's key once, though two graphs are looked up
    model_key = onnx_backend.model_key

    def counted(files: ModelFiles) -> str:
        hashed.append(model_key(files))
        return hashed[-1]

    monkeypatch.setattr(onnx_backend, "model_key", counted)
    with caplog.at_level(logging.WARNING, logger="embedding_service"):
        encoder.load()
    assert len(hashed) == 1
    assert "the int8 ONNX graph is not used, float32 is" in caplog.text
    assert (encoder.backend, encoder.onnx_precision, encoder.onnx_error, encoder.onnx_exported) == (
        "onnx", "fp32", None, True)
    assert encoder.onnx_agreement is not None and encoder.onnx_agreement >= 0.999
    assert min(cosines(encoder.encode(TEXTS[:3]), torch_fp32.encode(TEXTS[:3]))) >= 0.999


def test_the_graph_is_fused_for_onnx_runtime_and_torch_keeps_its_attention(encoder: SentenceEncoder,
                                                                           onnx_fp32: SentenceEncoder) -> None:
    import onnx

    assert onnx_fp32.cache_dir is not None
    graph = onnx.load(str(cached_graph(Path(onnx_fp32.cache_dir))))
    kinds = [node.op_type for node in graph.graph.node]
    # Traced with eager attention, which ONNX Runtime's BERT optimiser fuses (~18% faster on one prompt).
    assert kinds.count("Attention") == 6 and kinds.count("SkipLayerNormalization") == 12
    assert kinds.count("EmbedLayerNormalization") == 1
    assert [node.name for node in graph.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    # The export switched attention only while tracing: torch still runs its faster SDPA kernels.
    assert encoder._transformer.config._attn_implementation == "sdpa"


def test_the_exported_graph_is_reused_by_the_next_load(onnx_encoder: SentenceEncoder, onnx_cache_dir: Path) -> None:
    graph = cached_graph(onnx_cache_dir)
    written = graph.stat().st_mtime_ns
    # An access time ahead of now, which a read on a relatime mount leaves alone: only the loader resets it.
    os.utime(graph, ns=(time.time_ns() + 3600 * 10**9, written))
    before = graph.stat()
    assert not onnx_encoder.onnx_exported  # loaded after the session encoder had exported
    # "auto" with torch held to float32: ONNX is faster at every batch size, so it runs everything.
    again = SentenceEncoder(precision="fp32", cache_dir=onnx_cache_dir)
    again.load()
    assert (again.backend, again.precision, again.onnx_exported, again.onnx_error) == ("onnx", "fp32", False, None)
    after = graph.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert after.st_atime_ns < before.st_atime_ns  # marked as used now, so another install's export keeps it
    assert list(onnx_cache_dir.iterdir()) == [graph]  # no temporary file left behind


def fp32_graph(encoder: SentenceEncoder) -> Path:
    assert encoder.cache_dir is not None
    return cached_graph(Path(encoder.cache_dir))


def test_a_damaged_cached_graph_is_exported_again(onnx_fp32: SentenceEncoder, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    good = fp32_graph(onnx_fp32)
    damaged = tmp_path / good.name  # the name this model and these library versions look for
    damaged.write_bytes(good.read_bytes()[:good.stat().st_size // 2])  # as if a copy stopped halfway
    # Graphs of other library versions: one unused for a month, removed by the export; one in use.
    stale, in_use = tmp_path / f"{MODEL_NAME}-{'0' * 20}.onnx", tmp_path / f"{MODEL_NAME}-{'1' * 20}.onnx"
    for other, days in ((stale, 30), (in_use, 1)):
        other.write_bytes(b"another install's graph")
        os.utime(other, (time.time() - days * 86_400,) * 2)
    repaired = SentenceEncoder(backend="onnx", onnx_int8=False, cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="embedding_service"):
        repaired.load()
    assert "does not load" in caplog.text
    assert (repaired.backend, repaired.onnx_exported, repaired.onnx_error) == ("onnx", True, None)
    assert damaged.stat().st_size > 0.9 * good.stat().st_size
    assert sorted(tmp_path.iterdir()) == sorted([damaged, in_use])
    assert len(repaired.encode(["hello"])[0]) == 384


def test_an_unwritable_cache_costs_the_cache_not_onnx(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache directory should be")
    encoder = SentenceEncoder(cache_dir=not_a_directory, onnx_int8=False)  # one export (int8 would be two)
    with caplog.at_level(logging.WARNING, logger="embedding_service"):
        encoder.load()
    assert "cannot cache the ONNX graph" in caplog.text
    assert (encoder.backend, encoder.onnx_exported, encoder.onnx_error) == (AUTO_BACKEND, True, None)
    assert len(encoder.encode(["hello"])[0]) == 384


def test_a_graph_that_disagrees_is_exported_again_then_refused_for_torch(
        onnx_fp32: SentenceEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(fp32_graph(onnx_fp32), tmp_path)
    encoder = Unpleasable(cache_dir=tmp_path, onnx_int8=False)
    with caplog.at_level(logging.WARNING, logger="embedding_service"):
        encoder.load()
    assert "exporting it again" in caplog.text and "torch encodes everything" in caplog.text
    assert encoder.backend == "torch" and encoder.onnx_exported
    assert encoder.onnx_error is not None and "agrees with torch float32 only to cosine" in encoder.onnx_error
    assert len(encoder.encode(["hello"])[0]) == 384
    assert encoder.texts_by_backend == {"onnx": 0, "torch": 1}
    with ServerThread(create_app(EmbedSettings(), encoder=encoder)) as server:
        wait_until_healthy(server.url)
        health = httpx.get(f"{server.url}/health").json()
    assert health["backend"] == "torch" and "cosine" in health["onnx_error"]
    assert "onnx_max_batch" not in health


def test_auto_runs_small_calls_on_onnx_and_large_ones_on_torch(encoder: SentenceEncoder,
                                                               torch_fp32: SentenceEncoder) -> None:
    assert encoder.requested_backend == "auto" and encoder.backend == AUTO_BACKEND
    if AUTO_BACKEND == "onnx":
        pytest.skip("no native bf16 here: auto runs every call on ONNX (checked in the reuse test)")
    texts = [f"Where is my order number {i}?" for i in range(encoder.onnx_max_batch + 1)]
    before = dict(encoder.texts_by_backend)
    small = encoder.encode(texts[:-1])
    large = encoder.encode(texts)
    assert encoder.texts_by_backend == {"onnx": before["onnx"] + len(texts) - 1,
                                        "torch": before["torch"] + len(texts)}
    # Whichever backend ran, vectors agree with float32 torch (bf16 on torch allows ~2e-4).
    reference = torch_fp32.encode(texts)
    assert min(cosines(small, reference[:-1])) >= 0.999 and min(cosines(large, reference)) >= 0.999


def test_the_torch_backend_never_exports(torch_fp32: SentenceEncoder) -> None:
    assert (torch_fp32.backend, torch_fp32.onnx_error, torch_fp32.onnx_exported) == ("torch", None, False)
    assert torch_fp32.cache_dir is not None and list(Path(torch_fp32.cache_dir).iterdir()) == []
    torch_fp32.encode(["hello"])
    assert torch_fp32.texts_by_backend["onnx"] == 0


def test_health_names_the_backend_the_settings_chose(torch_fp32: SentenceEncoder,
                                                     onnx_encoder: SentenceEncoder) -> None:
    for loaded, expected in ((torch_fp32, "torch"), (onnx_encoder, "onnx")):
        with ServerThread(create_app(EmbedSettings(), encoder=loaded)) as server:
            wait_until_healthy(server.url)
            assert httpx.post(f"{server.url}/embed", json={"input": ["hi"]}).status_code == 200
            health = httpx.get(f"{server.url}/health").json()
        assert health["backend"] == expected and "onnx_max_batch" not in health
        assert health["texts_by_backend"][expected] >= 1
        assert health.get("onnx_precision") == ("int8" if expected == "onnx" else None)
