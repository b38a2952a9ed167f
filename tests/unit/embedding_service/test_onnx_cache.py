"""Settings that choose the backend, and the ONNX cache's naming and writing (no model, no torch)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from embedding_service import onnx_backend, onnx_cache
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
    weights.write_bytes(b"weightz")  # same size, other content
    assert onnx_backend.cache_path(files, tmp_path / "cache") != first  # new weights, new graph
    moved_on = onnx_backend.cache_path(files, tmp_path / "cache")
    (files.path / "config.json").write_text('{"hidden_size": 768}')
    assert onnx_backend.cache_path(files, tmp_path / "cache") != moved_on


def test_a_reinstall_of_the_same_weights_keeps_the_key(tmp_path: Path) -> None:
    files = fake_model(tmp_path / "model")
    key = onnx_backend.model_key(files)
    weights = files.path / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 86_400 * 10**9))
    assert onnx_backend.model_key(files) == key  # touched: same content, same graph
    shutil.copytree(files.path, tmp_path / "venv2" / "model")  # another venv's copy, new mtimes
    reinstalled = ModelFiles(path=tmp_path / "venv2" / "model", name="tiny", dim=384, max_tokens=256)
    assert onnx_backend.model_key(reinstalled) == key


def test_the_key_follows_every_weight_file(tmp_path: Path) -> None:
    files = fake_model(tmp_path / "model")
    key = onnx_backend.model_key(files)
    (files.path / "README.md").write_text("not a weight file")
    assert onnx_backend.model_key(files) == key
    (files.path / "pytorch_model.bin").write_bytes(b"more weights")
    assert onnx_backend.model_key(files) != key


def test_cache_names_are_claimed_by_their_model_only(tmp_path: Path) -> None:
    files = fake_model(tmp_path / "model")
    key = onnx_backend.model_key(files)
    for path in (onnx_backend.cache_path(files, tmp_path), onnx_backend.cache_path(files, tmp_path, int8=True)):
        assert onnx_cache.graph_key("tiny", path.name) == key
    other = "0123456789abcdef0123"
    assert onnx_cache.graph_key("tiny", f"tiny-{other}-int8-ffn-fp32.onnx") == other
    assert onnx_cache.graph_key("tiny.v2", f"tiny.v2-{other}.onnx") == other
    assert onnx_cache.graph_key("tiny", f"tiny.v2-{other}.onnx") is None  # "." is not any character
    for name in (f"tiny-{other}.onnx.bak", f"tiny-{other[:-1]}.onnx", f"tiny-{other.upper()}.onnx",
                 f"tiny-v2-{other}.onnx", f"tiny-{other}-{key}.onnx",  # a model named "tiny-<key>"
                 f".tiny-{other}.onnx.abc.tmp", f"tiny-{other}-.onnx", f"tiny-{other}-x y.onnx"):
        assert onnx_cache.graph_key("tiny", name) is None, name


def test_the_int8_graph_is_cached_under_its_own_name(tmp_path: Path) -> None:
    files = fake_model(tmp_path / "model")
    float32 = onnx_backend.cache_path(files, tmp_path / "cache")
    int8 = onnx_backend.cache_path(files, tmp_path / "cache", int8=True)
    assert int8 == float32.with_name(f"{float32.stem}-{onnx_backend.INT8_RECIPE}.onnx")


def test_the_default_cache_is_under_the_home_directory(tmp_path: Path) -> None:
    path = onnx_backend.cache_path(fake_model(tmp_path / "model"), None)
    assert path.parent == Path.home() / ".cache" / "cachegate" / "onnx"


def test_writes_are_atomic_and_leave_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "graph.onnx"
    onnx_cache.write_atomically(target, b"first")
    onnx_cache.write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert target.stat().st_mode & 0o777 == 0o644
    with pytest.raises(TypeError):
        onnx_cache.write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"second"
    assert [path.name for path in target.parent.iterdir()] == ["graph.onnx"]


def test_temporaries_of_a_dead_export_are_swept_but_not_a_live_one(tmp_path: Path) -> None:
    dead, live = tmp_path / ".graph.onnx.abc.tmp", tmp_path / ".graph.onnx.def.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    onnx_cache.write_atomically(tmp_path / "graph.onnx", b"whole")
    assert sorted(path.name for path in tmp_path.iterdir()) == [live.name, "graph.onnx"]


def aged(path: Path, days: float, *, content: bytes = b"graph") -> Path:
    """``path`` written with ``content``, last read and written ``days`` ago."""
    path.write_bytes(content)
    then = time.time() - days * 86_400
    os.utime(path, (then, then))
    return path


def test_an_export_prunes_only_our_stale_graphs_of_other_keys(tmp_path: Path) -> None:
    current, old_a, old_b, recent = "a" * 20, "b" * 20, "c" * 20, "d" * 20
    written = aged(tmp_path / f"tiny-{current}.onnx", 0)
    kept = [
        written.name,
        aged(tmp_path / f"tiny-{current}-int8-ffn-fp32.onnx", 30).name,  # this install's other precision
        aged(tmp_path / f"tiny-{recent}.onnx", 6).name,  # another install used it this week
        aged(tmp_path / f"other-{old_a}.onnx", 30).name,  # another model
        aged(tmp_path / f"tiny-v2-{old_a}.onnx", 30).name,  # another model whose name starts alike
        aged(tmp_path / f"tiny-{old_a}.onnx.bak", 30).name,  # not a name we write
        aged(tmp_path / "notes.txt", 30).name,
    ]
    (tmp_path / f"tiny-{old_b}-int8.onnx").mkdir()  # named like ours but a directory
    os.utime(tmp_path / f"tiny-{old_b}-int8.onnx", (time.time() - 30 * 86_400,) * 2)
    kept.append(f"tiny-{old_b}-int8.onnx")
    stale = [aged(tmp_path / f"tiny-{old_a}.onnx", 8), aged(tmp_path / f"tiny-{old_b}-int8-ffn-fp32.onnx", 30)]
    removed = onnx_cache.prune_stale_graphs(written, "tiny")
    assert removed == sorted(stale)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(kept)


def test_a_graph_read_lately_is_not_stale_whenever_it_was_written(tmp_path: Path) -> None:
    written = aged(tmp_path / f"tiny-{'a' * 20}.onnx", 0)
    loaded = aged(tmp_path / f"tiny-{'b' * 20}.onnx", 30)
    onnx_cache.mark_used(loaded)
    read = loaded.stat()
    assert read.st_atime > time.time() - 86_400 and read.st_mtime < time.time() - 29 * 86_400  # mtime kept
    assert onnx_cache.prune_stale_graphs(written, "tiny") == []
    assert loaded.is_file()


def test_pruning_deletes_nothing_beside_a_name_it_does_not_understand(tmp_path: Path) -> None:
    stale = aged(tmp_path / f"tiny-{'b' * 20}.onnx", 30)
    assert onnx_cache.prune_stale_graphs(aged(tmp_path / "tiny-custom.onnx", 0), "tiny") == []
    assert onnx_cache.prune_stale_graphs(tmp_path / "missing" / f"tiny-{'a' * 20}.onnx", "tiny") == []
    onnx_cache.mark_used(tmp_path / "missing.onnx")  # best effort: no error
    assert stale.is_file()


def test_threads_default_to_the_usable_cores() -> None:
    assert 1 <= onnx_backend.default_threads() <= (os.cpu_count() or 1)
