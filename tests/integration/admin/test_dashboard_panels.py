"""The dashboard's panels in a real (headless) Chromium: the page draws exactly the panels the proxy lists
at ``/dashboard/panels``, in its order and with its titles (semantic tier on and off), from the sources they
name; a ``link`` panel links to a page of this origin only; a kind the page does not know says so.

Screenshots are saved under ``test-artifacts/``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.browser import ARTIFACTS, Chromium
from tests.support.dashboard import READY, drawn, open_dashboard, settled, traffic

SEMANTIC_STATS = ("entries", "lookups", "hits", "shadow_hits", "misses", "refusals", "stored", "errors")


def listed(panels: list[dict[str, Any]]) -> list[list[str]]:
    return [[panel["id"], panel["kind"], panel["title"]] for panel in panels]


@pytest.mark.parametrize("semantic_mode", ["off", "serve"])
def test_the_page_draws_exactly_the_panels_the_proxy_lists(request: pytest.FixtureRequest, start_proxy: Any,
                                                           chromium: Chromium, semantic_mode: str) -> None:
    if semantic_mode == "serve":
        request.getfixturevalue("loaded_encoder")  # the real model, loaded once per session
    proxy = start_proxy(semantic_mode=semantic_mode)
    traffic(proxy)
    panels = httpx.get(proxy.url + "/dashboard/panels").json()["panels"]
    ids = [panel["id"] for panel in panels]
    assert ("semantic" in ids) == (semantic_mode == "serve")  # the tier's panel only when the tier is on
    page = open_dashboard(chromium, proxy.url)
    try:
        page.wait_for(READY.format(polls=0))
        assert drawn(page) == listed(panels)  # the same panels, in the same order, with the same titles
        shown_titles = page.evaluate(
            "Array.from(document.querySelectorAll('#panels > [data-panel]')).map(function (n) {"
            " return n.querySelector('h2, summary').firstChild.textContent; })")
        assert shown_titles == [panel["title"] for panel in panels]
        footer = page.text("#sources") or ""
        assert all(panel["source"] in footer for panel in panels if panel["kind"] != "link")
        if semantic_mode == "serve":
            stats = settled(proxy, "/metrics/semantic", SEMANTIC_STATS)
            page.evaluate("window.cachegateDashboard.refresh()")
            values = page.evaluate("JSON.stringify(Array.from(document.querySelectorAll("
                                   "'#panel-semantic [data-stat] .value')).reduce(function (out, n) {"
                                   " out[n.parentNode.getAttribute('data-stat')] = n.getAttribute('data-value');"
                                   " return out; }, {}))")
            assert {name: float(value) for name, value in json.loads(values).items()} == {
                name: stats[name] for name in SEMANTIC_STATS}
            assert stats["lookups"] > 0 and stats["entries"] > 0  # numbers, not a page of zeros
            assert page.text("#panel-semantic [data-part=hint]") == "serve · threshold 0.85"  # the verifier's search
            page.screenshot(ARTIFACTS / "dashboard-semantic.png")
        else:
            assert page.evaluate("document.getElementById('panel-semantic')") is None
        page.pump(0.3)
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_a_link_panel_and_a_kind_the_page_does_not_draw(start_proxy: Any, chromium: Chromium) -> None:
    proxy = start_proxy()
    panels = httpx.get(proxy.url + "/dashboard/panels").json()["panels"]
    extra = [
        {"id": "probe", "title": "Prompt-cache probe", "kind": "link", "source": "/probe", "order": 95,
         "note": "Which providers cache your prompts, and for how long."},
        {"id": "elsewhere", "title": "Elsewhere", "kind": "link", "source": "https://example.com/", "order": 96,
         "note": ""},
        {"id": "future", "title": "A later kind", "kind": "sparkline", "source": "/metrics", "order": 97, "note": ""},
    ]
    page = open_dashboard(chromium, proxy.url)
    try:
        page.wait_for(READY.format(polls=0))
        page.evaluate("document.getElementById('pause').click()")  # no poll draws the proxy's list meanwhile
        page.evaluate("window.cachegateDashboard.state.inflight")  # the poll in flight, if one is, has ended
        page.evaluate(f"window.cachegateDashboard.layout({json.dumps(panels + extra)})")
        assert drawn(page) == listed(panels + extra)
        assert page.evaluate("document.querySelector('#panel-probe a').getAttribute('href')") == "/probe"
        assert page.text("#panel-probe a") == "Open /probe"
        assert page.text("#panel-probe h2") == "Prompt-cache probe"
        assert page.text("#panel-probe p") == "Which providers cache your prompts, and for how long."
        assert page.evaluate("document.querySelector('#panel-elsewhere a')") is None  # never a link off this origin
        assert "does not draw panels of kind \u201csparkline\u201d" in (page.text("#panel-future") or "")
        assert "/probe" not in (page.text("#sources") or "")  # a link's page is not fetched as JSON
        page.screenshot(ARTIFACTS / "dashboard-link.png")
        # the proxy's list is drawn again with the next poll
        page.evaluate("document.getElementById('pause').click()")
        page.evaluate("window.cachegateDashboard.refresh()")
        assert drawn(page) == listed(panels)
        assert page.errors == [], page.errors
    finally:
        page.close()
