"""What the dashboard's browser tests share: traffic for every panel, settled numbers to compare the page
with, and opening the page in Chromium."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from tests.support.browser import Chromium, Page
from tests.support.proxy import ProxyServer

NO_VALUE = "\u2013"  # the en dash the page shows for a missing number
READY = ("window.cachegateDashboard && window.cachegateDashboard.state.polls > {polls} && "
         "window.cachegateDashboard.state.connected === true")


def traffic(proxy: ProxyServer) -> None:
    """Misses, exact hits, a stream, a bypass and two models: something for every panel."""
    client = proxy.client()
    for round_ in range(3):
        for i in range(3):
            model = "gpt-4o" if i == 2 else "gpt-4o-mini"
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"question {i}"}])
        wait_for_stores(proxy)
        if round_ == 0:
            list(client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": "stream please"}]))
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "question 0"}],
                                   extra_headers={"x-bypass-cache": "true"})
    wait_for_stores(proxy)


def wait_for_stores(proxy: ProxyServer) -> None:
    deadline = time.monotonic() + 5
    while len(proxy.parts.jobs) and time.monotonic() < deadline:
        time.sleep(0.01)


def settled(proxy: ProxyServer, path: str, keys: Sequence[str], timeout: float = 5.0) -> dict[str, Any]:
    """The JSON at ``path`` once two reads a moment apart agree on ``keys`` (the numbers the page shows)."""
    deadline = time.monotonic() + timeout
    last = httpx.get(proxy.url + path).json()
    while True:
        time.sleep(0.2)
        now = httpx.get(proxy.url + path).json()
        if all(now[key] == last[key] for key in keys) or time.monotonic() > deadline:
            result: dict[str, Any] = now
            return result
        last = now


def open_dashboard(chromium: Chromium, url: str, width: int = 1366, height: int = 768,
                   mobile: bool = False) -> Page:
    page = chromium.new_page(width, height, mobile=mobile)
    page.goto(url + "/dashboard")
    return page


def drawn(page: Page) -> list[list[str]]:
    """[id, kind, title] of every panel on the page, top to bottom."""
    value: list[list[str]] = page.evaluate(
        "Array.from(document.querySelectorAll('#panels > [data-panel]')).map(function (n) { return "
        "[n.getAttribute('data-panel'), n.getAttribute('data-kind'), n.getAttribute('aria-label')]; })")
    return value
