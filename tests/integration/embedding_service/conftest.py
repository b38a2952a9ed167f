"""One real all-MiniLM-L6-v2 per test session, served over HTTP by the embedding service.

Loading the model costs seconds (mostly importing torch), so the encoder is session-scoped and every app
or LocalEmbedder in these tests shares it; each app still has its own batcher and event loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from embedding_service.app import create_app
from embedding_service.model import SentenceEncoder
from embedding_service.settings import EmbedSettings
from tests.support.servers import ServerThread


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
def encoder() -> SentenceEncoder:
    loaded = SentenceEncoder()
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
