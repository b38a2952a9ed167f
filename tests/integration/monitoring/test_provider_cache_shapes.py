"""The savings ledger counts provider-cached tokens in every usage shape, plain and streamed, through the
real proxy with the simulator answering in that shape (its cache profiles ``sim-shape-*``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.monitoring.helpers import metrics_when
from tests.support.servers import SimulatorServer
from tests.support.usage_shapes import SHAPES

PROMPT = " ".join(f"word{i}" for i in range(1200))  # above the profiles' 1024-token minimum


def ask(proxy: Any, model: str, *, stream: bool) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    # no-cache: the proxy stores but never answers from its own cache, so each request reaches the provider
    response = httpx.post(proxy.base_url + "/chat/completions", json=body, timeout=10,
                          headers={"authorization": "Bearer sk-test", "cache-control": "no-cache"})
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("shape", SHAPES)
def test_ledger_counts_provider_cached_tokens(start_proxy: Any, sim: SimulatorServer, shape: str,
                                              stream: bool) -> None:
    proxy = start_proxy()
    model = f"sim-shape-{shape}"
    for _ in range(3):
        ask(proxy, model, stream=stream)
    truth = [t for t in sim.state.cache.truth if t["model"] == model]
    assert [t["cached_tokens"] for t in truth] == [0, 1152, 1152]  # what the provider really served from cache
    usage = metrics_when(proxy, 3)["token_usage"]
    expected = 0 if shape == "none" else 2 * 1152  # no cache field: nothing is known, nothing counted
    assert usage["provider_cached_tokens"] == expected
    assert usage["prompt_tokens"] == sum(t["prompt_tokens"] for t in truth)
