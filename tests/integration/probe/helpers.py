"""Running the probe monitor in a real proxy against the simulator's fake clock, and waiting for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

WAIT = 120.0  # generous: the machine is shared; nothing here measures speed


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def api(proxy: ProxyServer, path: str, *, key: str | None = None, **params: Any) -> Any:
    headers = {"x-api-key": key} if key else {}
    response = httpx.get(proxy.url + "/probe/api/" + path, params=params, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def scheduler(proxy: ProxyServer, key: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = api(proxy, "scheduler", key=key)
    return state


def idle(state: dict[str, Any]) -> bool:
    return not state["running"] and not state["ttl"]["busy"]


def cycle_done(proxy: ProxyServer, after: str | None = None, key: str | None = None) -> dict[str, Any]:
    """Wait for a cycle other than ``after`` to have ended (and the TTL steps it started); the cycle."""
    def done() -> dict[str, Any] | None:
        state = scheduler(proxy, key)
        last = state["last_cycle"]
        return last if last and last["id"] != after and last["status"] != "running" and idle(state) else None

    cycle: dict[str, Any] = wait_for(done, "a probe cycle to end")
    return cycle


def advance(sim: SimulatorServer, seconds: float) -> float:
    now: float = httpx.post(sim.url + "/_clock", json={"advance": seconds}).json()["now"]
    return now


def truth(sim: SimulatorServer, model: str | None = None) -> list[dict[str, Any]]:
    params = {"model": model} if model else {}
    rows: list[dict[str, Any]] = httpx.get(sim.url + "/_truth", params=params).json()
    return rows
