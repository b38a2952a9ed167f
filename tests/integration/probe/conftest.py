"""Fixtures of the probe tests: the simulator listing its profiled models, and proxies running the monitor on
its fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import Chromium, require_chromium
from tests.support.proxy import ProxyServer, proxy_settings
from tests.support.servers import SimulatorServer
from tests.support.sim_clock import SimHttpClock

StartMonitor = Callable[..., ProxyServer]


@pytest.fixture(scope="module")
def profiled_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(catalog="profiles") as sim:
        yield sim


@pytest.fixture
def psim(profiled_sim: SimulatorServer) -> SimulatorServer:
    profiled_sim.state.reset()
    return profiled_sim


@pytest.fixture
def start_monitor(psim: SimulatorServer, tmp_path: Path) -> Iterator[StartMonitor]:
    """Start proxies running the probe monitor on the simulator's clock (one cycle at start, no jitter, one
    model at a time, a tick a third of a second); setting overrides as keywords. Stopped after the test."""
    started: list[ProxyServer] = []

    def start(**overrides: Any) -> ProxyServer:
        defaults: dict[str, Any] = {"probe_enabled": True, "probe_models": ("sim-openai",), "probe_tests": ("basic",),
                                    "probe_jitter": 0.0, "probe_lock_seconds": 1.0, "probe_concurrency": 1}
        server = ProxyServer(proxy_settings(psim.base_url, tmp_path, **{**defaults, **overrides}),
                             probe_clock=SimHttpClock(psim.url))
        server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    binary = require_chromium()
    with Chromium(binary) as browser:
        yield browser
