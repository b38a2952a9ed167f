"""The embedded default's disk level through the real proxy: a restart on the same DATA_DIR keeps answers, a
damaged file never stops the proxy, CACHE_DISK_MAX_BYTES=0 turns the level off, and the disk's key filter
spares the read of a prompt it never stored (built from the file after a restart, rebuilt after a clear)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from proxy.cache.disk import DiskBackend
from tests.integration.conftest import StartProxy
from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

MESSAGES = [{"role": "user", "content": "Does this survive a restart?"}]


def ask(proxy: ProxyServer, content: str = MESSAGES[0]["content"]) -> tuple[str, str | None]:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}])
    return raw.headers["x-cache"], raw.parse().choices[0].message.content


def disk_filter_built(proxy: ProxyServer) -> DiskBackend:
    disk = proxy.parts.exact.levels[1]
    assert isinstance(disk, DiskBackend)
    deadline = time.monotonic() + 30  # built in the background after the file's first statement
    while disk.keys.filter is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert disk.keys.filter is not None
    return disk


def disk_level_metrics(proxy: ProxyServer) -> dict[str, object]:
    levels: dict[str, dict[str, object]] = httpx.get(proxy.url + "/metrics", timeout=10).json()["cache"]["levels"]
    return levels["disk"]


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


def test_after_a_restart_the_disk_filter_is_built_from_the_file_and_spares_new_prompts_the_read(
        start_proxy: StartProxy, sim: SimulatorServer) -> None:
    first = start_proxy()
    stored = {content: ask(first, content)[1] for content in ("one", "two", "three")}
    first.stop()
    second = start_proxy()
    assert ask(second, "one") == ("HIT", stored["one"])  # whether the filter is built yet or not
    disk = disk_filter_built(second)
    assert ask(second, "two") == ("HIT", stored["two"])  # in the filter built from the file: read, found
    assert ask(second, "three") == ("HIT", stored["three"])
    assert disk.stats.skipped_reads == 0
    assert ask(second, "four")[0] == "MISS"  # never stored: answered "not there" without reading the file
    assert disk.stats.skipped_reads == 1 and disk.stats.misses == 1
    level = disk_level_metrics(second)
    assert level["skipped_reads"] == 1
    assert level["key_filter"] == {"state": "ready", "capacity": 100_000, "added": 4,  # three from the file
                                   "false_positive_rate": 0.0}                       # and "four", stored
    assert sim.state.chat_calls == 4


def test_after_a_clear_of_every_level_the_filter_never_hides_what_is_stored_again(start_proxy: StartProxy,
                                                                                  sim: SimulatorServer) -> None:
    proxy = start_proxy(admin_api_key="adm")
    disk = disk_filter_built(proxy)  # (the proxy's start opened the file)
    for content in ("one", "two", "three"):
        ask(proxy, content)
    assert disk.stats.skipped_reads == 3  # three new prompts: not on disk, no read
    cleared = httpx.post(proxy.url + "/admin/cache/clear", headers={"authorization": "Bearer adm"},
                         params={"tier": "exact"}, timeout=10)
    assert cleared.status_code == 200, cleared.text
    assert ask(proxy, "one")[0] == "MISS"  # a stale "maybe" from the filter: read, not there
    assert disk.stats.skipped_reads == 3 and disk.keys.deleted == 3  # the next upkeep rebuilds (unit-tested)
    assert ask(proxy, "one")[0] == "HIT"
    proxy.stop()
    again = start_proxy(admin_api_key="adm")
    disk = disk_filter_built(again)  # from what the clear left: "one"
    assert disk.keys.filter is not None and disk.keys.filter.added == 1
    assert ask(again, "one")[0] == "HIT"
    assert ask(again, "two")[0] == "MISS" and disk.stats.skipped_reads == 1
    assert sim.state.chat_calls == 5


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
