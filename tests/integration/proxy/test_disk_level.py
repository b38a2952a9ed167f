"""The embedded default's disk level through the real proxy: a restart on the same DATA_DIR keeps answers, a
damaged file never stops the proxy, and CACHE_DISK_MAX_BYTES=0 turns the level off."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import StartProxy
from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

MESSAGES = [{"role": "user", "content": "Does this survive a restart?"}]


def ask(proxy: ProxyServer) -> tuple[str, str | None]:
    raw = proxy.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    return raw.headers["x-cache"], raw.parse().choices[0].message.content


def test_the_same_request_after_a_restart_is_a_hit(start_proxy: StartProxy, sim: SimulatorServer,
                                                   tmp_path: Path) -> None:
    first = start_proxy()
    assert first.parts.exact.component == "memory+disk"
    cache, answer = ask(first)
    assert cache == "MISS"
    first.stop()  # the background write finished before the stop returned (the job runner drains it)
    second = start_proxy()
    assert ask(second) == ("HIT", answer)
    assert sim.state.chat_calls == 1
    memory, disk = second.parts.exact.levels
    assert (memory.stats.misses, disk.stats.hits) == (1, 1)  # promoted: the next one is a memory hit
    assert ask(second) == ("HIT", answer)
    assert memory.stats.hits == 1
    assert (tmp_path / "data" / "exact-cache.sqlite3").exists()


def test_a_damaged_cache_file_is_set_aside_and_the_proxy_serves(start_proxy: StartProxy, sim: SimulatorServer,
                                                                tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "exact-cache.sqlite3").write_bytes(b"\x00garbage" * 4096)
    proxy = start_proxy()
    assert ask(proxy)[0] == "MISS"
    assert ask(proxy)[0] == "HIT"
    assert list(data.glob("exact-cache.sqlite3.corrupt-*"))


def test_cache_disk_max_bytes_zero_turns_the_level_off(start_proxy: StartProxy, sim: SimulatorServer,
                                                       tmp_path: Path) -> None:
    first = start_proxy(cache_disk_max_bytes=0)
    assert first.parts.exact.component == "memory"
    assert ask(first)[0] == "MISS"
    first.stop()
    assert ask(start_proxy(cache_disk_max_bytes=0))[0] == "MISS"
    assert not (tmp_path / "data" / "exact-cache.sqlite3").exists()
