"""The cache panels in a real (headless) Chromium: the *levels* panel shows each level's statistics as
/metrics has them, and the *warnings* banner shows the warnings /health/detailed lists."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.support.browser import ARTIFACTS, Chromium
from tests.support.dashboard import READY, open_dashboard, traffic


def test_levels_and_the_warnings_banner(start_proxy: Any, chromium: Chromium) -> None:
    proxy = start_proxy(alert_check_seconds=0.2, alert_store_fill=0.00001)  # any entry makes a level "full"
    traffic(proxy)
    levels = httpx.get(proxy.url + "/metrics").json()["cache"]["levels"]  # also brings the level gauges up to date
    deadline = time.monotonic() + 10
    warnings: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not warnings:
        warnings = httpx.get(proxy.url + "/health/detailed").json()["warnings"]
        time.sleep(0.1)
    assert {w["name"] for w in warnings} == {"store_full"}
    page = open_dashboard(chromium, proxy.url)
    try:
        page.wait_for(READY.format(polls=0))
        order = page.evaluate("Array.from(document.querySelectorAll('#panels > [data-panel]')).map("
                              "function (n) { return n.getAttribute('data-panel'); })")
        assert order[0] == "warnings"  # the banner comes first
        shown = json.loads(page.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('#panel-warnings [data-warning]')).map("
            "function (n) { return [n.getAttribute('data-warning'), n.textContent]; }))"))
        assert {name for name, _ in shown} == {"store_full"}
        assert all("full" in text for _, text in shown)
        assert page.evaluate("document.getElementById('panel-warnings').classList.contains('alerting')") is True
        rows = json.loads(page.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll('#panel-levels tbody tr[data-level]')).map("
            "function (tr) { return Array.from(tr.children).map(function (td) { return td.textContent; }); }))"))
        assert [row[0] for row in rows] == list(levels) == ["memory", "disk"]
        memory = {row[0]: row for row in rows}["memory"]
        assert memory[1] == str(levels["memory"]["entries"]) and memory[7] == str(levels["memory"]["sets"])
        page.screenshot(ARTIFACTS / "dashboard-cache-panels.png")
        page.pump(0.3)
        assert page.errors == [], page.errors
    finally:
        page.close()
