"""Run the real proxy app over HTTP for integration tests, and talk to it with the official SDK."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai

from proxy.app import Parts, create_app
from proxy.http.server import uvicorn_options
from proxy.settings import Settings
from tests.support.servers import ServerThread


class ProxyServer(ServerThread):
    """``create_app(settings)`` served on a free port; ``parts`` are the live app's parts."""

    def __init__(self, settings: Settings, *, early: bool = True, **app_kwargs: Any) -> None:
        """``early=False``: without the answers before ASGI (proxy.chat.memory_hits), to compare with them."""
        self.settings = settings
        self.app = create_app(settings, **app_kwargs)
        # served the way `cachegate serve` serves it
        super().__init__(self.app, **uvicorn_options(self.app.early if early else None))

    @property
    def parts(self) -> Parts:
        parts: Parts = self.app.state.parts
        return parts

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def client(self, api_key: str = "sk-test-alice", **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)

    def async_client(self, api_key: str = "sk-test-alice", **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)


def admin_key(proxy: ProxyServer) -> str:
    """The admin key of a started proxy: ADMIN_API_KEY, or the one it generated into DATA_DIR."""
    key = proxy.parts.access.control.admin_key
    assert key is not None, "the proxy has not started"
    return key


def admin_headers(proxy: ProxyServer) -> dict[str, str]:
    return {"x-api-key": admin_key(proxy)}


def proxy_settings(upstream_base_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test proxy: everything on disk goes under ``tmp_path``; no semantic tier unless asked."""
    base = Settings(upstream_base_url=upstream_base_url, data_dir=str(tmp_path / "data"),
                    log_path=str(tmp_path / "requests.log"), semantic_mode="off", port=0)
    return base.replace(**overrides)


@contextlib.contextmanager
def replicas(upstream_base_url: str, tmp_path: Path, redis_url: str, count: int = 2,
             **overrides: Any) -> Iterator[list[ProxyServer]]:
    """``count`` proxies on one Redis (each its own ``DATA_DIR``), as replicas behind a load balancer; the
    caller empties that Redis first when it must start clean."""
    proxies = [ProxyServer(proxy_settings(upstream_base_url, tmp_path / f"replica-{i}", redis_url=redis_url,
                                          **overrides)) for i in range(count)]
    started: list[ProxyServer] = []
    try:
        for proxy in proxies:
            proxy.start()
            started.append(proxy)
        yield proxies
    finally:
        for proxy in started:
            proxy.stop()
