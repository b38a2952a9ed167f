"""Settings that choose the backend, and the ONNX cache's naming and writing (no model, no torch)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from embedding_service import onnx_backend
from embedding_service.app import make_encoder
from embedding_service.errors import SettingsError
from embedding_service.model import DEFAULT_ONNX_MAX_BATCH
from embedding_service.model_files import ModelFiles
from embedding_service.settings import EmbedSettings


def test_backend_settings_defaults_and_values() -> None:
    default = EmbedSettings.from_env({})
    assert (default.backend, default.onnx_max_batch, default.onnx_threads, default.cache_dir) == (
        "auto", DEFAULT_ONNX_MAX_BATCH, 0, None)
    chosen = EmbedSettings.from_env({"EMBED_BACKEND": " ONNX ", "EMBED_ONNX_MAX_BATCH": "4",
                                     "EMBED_ONNX_THREADS": "1", "EMBED_CACHE_DIR": "/var/cache/cg"})
    assert (chosen.backend, chosen.onnx_max_batch, chosen.onnx_threads, chosen.cache_dir) == (
        "onnx", 4, 1, "/var/cache/cg")


@pytest.mark.parametrize(("env", "value"), [("EMBED_BACKEND", "tensorrt"), ("EMBED_ONNX_MAX_BATCH", "0"),
                                            ("EMBED_ONNX_THREADS", "-1")])
def test_bad_backend_settings_name_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        EmbedSettings.from_env({env: value})


def test_the_encoder_is_built_from_the_settings() -> None:
    encoder = make_encoder(EmbedSettings(backend="torch", onnx_max_batch=3, onnx_threads=1, cache_dir="/x",
                                         precision="fp32", torch_threads=2))
    assert (encoder.requested_backend, encoder.onnx_max_batch, encoder.onnx_threads, encoder.cache_dir) == (
        "torch", 3, 1, "/x")
    assert (encoder.requested_precision, encoder.torch_threads, encoder.loaded) == ("fp32", 2, False)
    assert make_encoder(EmbedSettings()).onnx_threads is None  # 0: one thread per usable core


def fake_model(directory: Path) -> ModelFiles:
    directory.mkdir()
    (directory / "config.json").write_text('{"hidden_size": 384}')
    (directory / "model.safetensors").write_bytes(b"weights")
    return ModelFiles(path=directory, name="tiny", dim=384, max_tokens=256)


def test_the_cache_name_follows_the_model_files(tmp_path: Path) -> None:
    files = fake_model(tmp_path / "model")
    first = onnx_backend.cache_path(files, tmp_path / "cache")
    assert first.parent == tmp_path / "cache" and first.name.startswith("tiny-") and first.suffix == ".onnx"
    assert onnx_backend.cache_path(files, tmp_path / "cache") == first  # stable
    weights = files.path / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000_000))
    assert onnx_backend.cache_path(files, tmp_path / "cache") != first  # new weights, new graph
    moved_on = onnx_backend.cache_path(files, tmp_path / "cache")
    (files.path / "config.json").write_text('{"hidden_size": 768}')
    assert onnx_backend.cache_path(files, tmp_path / "cache") != moved_on


def test_the_int8_graph_is_cached_under_its_own_name(tmp_path: Path) -> None:
    files = fake_model(tmp_path / "model")
    float32 = onnx_backend.cache_path(files, tmp_path / "cache")
    int8 = onnx_backend.cache_path(files, tmp_path / "cache", int8=True)
    assert int8 == float32.with_name(float32.stem + "-int8.onnx")


def test_the_default_cache_is_under_the_home_directory(tmp_path: Path) -> None:
    path = onnx_backend.cache_path(fake_model(tmp_path / "model"), None)
    assert path.parent == Path.home() / ".cache" / "cachegate" / "onnx"


def test_writes_are_atomic_and_leave_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "graph.onnx"
    onnx_backend.write_atomically(target, b"first")
    onnx_backend.write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == 0o644
    with pytest.raises(TypeError):
        onnx_backend.write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"second"
    assert [path.name for path in target.parent.iterdir()] == ["graph.onnx"]


def test_temporaries_of_a_dead_export_are_swept_but_not_a_live_one(tmp_path: Path) -> None:
    dead, live = tmp_path / ".graph.onnx.abc.tmp", tmp_path / ".graph.onnx.def.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    onnx_backend.write_atomically(tmp_path / "graph.onnx", b"whole")
    assert sorted(path.name for path in tmp_path.iterdir()) == [live.name, "graph.onnx"]


def test_threads_default_to_the_usable_cores() -> None:
    assert 1 <= onnx_backend.default_threads() <= (os.cpu_count() or 1)
