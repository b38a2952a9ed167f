"""The simulator's knobs for load benchmarks (:mod:`tests.support.sim_load`): a fixed latency, an outage
window, calls counted per prompt, answers that name the caller's key."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.support.servers import ServerThread
from tests.support.sim_load import key_tag
from tests.support.simulator import SimState, create_simulator


@pytest.fixture
def loaded() -> Iterator[tuple[str, SimState]]:
    app, state = create_simulator(latency=0.2, echo_key=True)
    with ServerThread(app) as server:
        yield server.url, state


def ask(url: str, prompt: str, key: str = "sk-one", *, stream: bool = False) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=10,
                      json={"model": "m", "stream": stream, "messages": [{"role": "user", "content": prompt}]})


def test_answers_name_the_callers_key_plain_and_streamed(loaded: tuple[str, SimState]) -> None:
    url, _ = loaded
    assert key_tag("Bearer sk-one") == key_tag("Bearer sk-one") != key_tag("Bearer sk-two")
    assert ask(url, "hi").json()["choices"][0]["message"]["content"] == (
        f"[1] You said: hi (key {key_tag('Bearer sk-one')})")
    assert ask(url, "hi", "sk-two").json()["choices"][0]["message"]["content"] == (
        f"[2] You said: hi (key {key_tag('Bearer sk-two')})")
    events = [orjson.loads(line[6:]) for line in ask(url, "hi", stream=True).text.split("\n\n")
              if line.startswith("data: {")]
    streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert streamed == f"[3] You said: hi (key {key_tag('Bearer sk-one')})"


def test_every_call_waits_the_latency(loaded: tuple[str, SimState]) -> None:
    url, _ = loaded
    started = time.monotonic()
    assert ask(url, "slow").status_code == 200
    assert time.monotonic() - started >= 0.2  # a lower bound only: sleeping never takes less


def test_calls_are_counted_per_prompt(loaded: tuple[str, SimState]) -> None:
    url, state = loaded
    for prompt in ("a", "b", "a"):
        ask(url, prompt)
    assert [httpx.get(url + "/_sim/asked", params={"prompt": p}).json()["calls"] for p in ("a", "b", "c")] == [2, 1, 0]
    state.reset()
    assert httpx.get(url + "/_sim/asked", params={"prompt": "a"}).json() == {"calls": 0}


def test_an_outage_answers_its_status_to_everyone_until_it_ends(loaded: tuple[str, SimState]) -> None:
    url, state = loaded
    assert httpx.post(url + "/_sim/outage", json={"status": 503, "seconds": 600}).status_code == 200
    failed = ask(url, "down", "sk-two")
    assert failed.status_code == 503
    assert failed.json()["error"]["type"] == "server_error"
    assert state.load.asked["down"] == 1  # the call arrived, and was counted
    assert httpx.post(url + "/_sim/outage", json={"seconds": 0}).status_code == 200
    assert ask(url, "down").status_code == 200
    assert httpx.post(url + "/_sim/outage", json={"status": 503}).status_code == 400
