"""The request log gets one fixed-width line per chat request."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.integration.monitoring.helpers import chat, chat_stream, wait_for

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| (\S+) +\| (\S+) +\| +(\d+) tokens \| \$(\d+\.\d{5})$")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_one_line_per_request(start_proxy: Any, tmp_path: Path) -> None:
    proxy = start_proxy()
    first = chat(proxy)
    chat(proxy)
    chat(proxy, headers={"x-bypass-cache": "true"})
    chat_stream(proxy, "streamed")
    httpx.get(proxy.url + "/metrics")
    httpx.get(proxy.base_url + "/models")  # not a chat request: no line
    path = tmp_path / "requests.log"
    logged = wait_for(lambda: lines(path), lambda found: len(found) >= 4)
    assert len(logged) == 4
    parsed = [LINE.match(line) for line in logged]
    assert all(parsed), logged
    assert [m.group(1) for m in parsed if m] == ["MISS", "EXACT_HIT", "BYPASS", "MISS"]
    assert {m.group(2) for m in parsed if m} == {"gpt-4o-mini"}
    total = first.parse().usage.total_tokens
    assert [int(m.group(3)) for m in parsed if m][:3] == [total, total, total]
    assert all(len(line.split(" | ")[1]) == 13 for line in logged)


def test_empty_log_path_turns_it_off(start_proxy: Any, tmp_path: Path) -> None:
    proxy = start_proxy(log_path="")
    chat(proxy)
    proxy.stop()
    assert not (tmp_path / "requests.log").exists()
