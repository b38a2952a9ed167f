"""The embedding service on a free port, on the model the whole test session shares."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from embedding_service.app import create_app as create_embedding_app
from embedding_service.settings import EmbedSettings
from proxy.semantic import shared_encoder
from tests.support.servers import ServerThread


def wait_until(condition: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {limit}s")
        time.sleep(0.01)


def start_embedding_service() -> ServerThread:
    server = ServerThread(create_embedding_app(EmbedSettings(), encoder=shared_encoder()))
    server.start()
    wait_until(lambda: httpx.get(server.url + "/health", timeout=1).status_code == 200, "embedding service health",
               limit=120)
    return server
