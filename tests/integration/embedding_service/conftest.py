"""One real all-MiniLM-L6-v2 per test session, served over HTTP by the embedding service.

Loading the model costs seconds (mostly importing torch), so the encoder is session-scoped and every app
or LocalEmbedder in these tests shares it; each app still has its own batcher and event loop.
The session encoder runs the default backend ("auto": ONNX Runtime for small calls, torch for large ones);
it exports the ONNX graph once into a session cache directory that the ONNX tests load again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embedding_service.app import create_app
from embedding_service.model import SentenceEncoder, cpu_has_native_bf16
from embedding_service.settings import EmbedSettings
from tests.support.servers import ServerThread

#: What backend "auto" resolves to here: ONNX for small calls and torch bf16 for large ones where the CPU has
#: native bf16; elsewhere torch would run float32, which ONNX beats at every size, so ONNX alone.
AUTO_BACKEND = "onnx+torch" if cpu_has_native_bf16() else "onnx"


def wait_until_healthy(url: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url}/health did not answer 200 within {limit}s")


@pytest.fixture(scope="session")
def onnx_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EMBED_CACHE_DIR for the session: tests never write the user's ~/.cache."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def encoder(onnx_cache_dir: Path) -> SentenceEncoder:
    """The default encoder (backend auto), which exports the ONNX graph into ``onnx_cache_dir``."""
    loaded = SentenceEncoder(cache_dir=onnx_cache_dir)
    loaded.load()
    return loaded


@pytest.fixture(scope="session")
def torch_fp32(tmp_path_factory: pytest.TempPathFactory) -> SentenceEncoder:
    """Torch in float32 only: the reference every other backend and precision is held to."""
    loaded = SentenceEncoder(backend="torch", precision="fp32", cache_dir=tmp_path_factory.mktemp("unused-cache"))
    loaded.load()
    return loaded


@pytest.fixture(scope="session")
def service(encoder: SentenceEncoder) -> Iterator[ServerThread]:
    settings = EmbedSettings(max_inputs=256, max_chars=20_000)
    with ServerThread(create_app(settings, encoder=encoder)) as server:
        wait_until_healthy(server.url)
        yield server


@pytest.fixture
def http(service: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client
