"""The dashboard in a real (headless) Chromium: what a person sees after real traffic, when the proxy is
gone, behind the monitor key, and the admin actions behind their confirmation.

Screenshots are saved under ``test-artifacts/`` (laptop 1366x768 and phone 390x844, full page).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.support.browser import ARTIFACTS, Chromium, Page
from tests.support.proxy import ProxyServer

NO_VALUE = "\u2013"  # the en dash the page shows for a missing number
VIEWPORTS = [("laptop", 1366, 768, False), ("phone", 390, 844, True)]
READY = ("window.cachegateDashboard && window.cachegateDashboard.state.polls > {polls} && "
         "window.cachegateDashboard.state.connected === true")
KPI = "#panel-totals [data-kpi={}] .value"  # a number of the totals panel


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


def settled_metrics(proxy: ProxyServer, timeout: float = 5.0) -> dict[str, Any]:
    """/metrics once two reads a moment apart agree on the totals the page shows."""
    parts = ("cache_performance", "token_usage", "cost_analysis")
    deadline = time.monotonic() + timeout
    last = httpx.get(proxy.url + "/metrics").json()
    while True:
        time.sleep(0.2)
        now = httpx.get(proxy.url + "/metrics").json()
        if all(now[part] == last[part] for part in parts) or time.monotonic() > deadline:
            result: dict[str, Any] = now
            return result
        last = now


def shown(page: Page) -> dict[str, Any]:
    value = page.evaluate("""JSON.stringify(["requests", "hit-rate", "tokens-saved", "cost-saved", "savings"]
        .reduce(function (out, name) {
          var n = document.querySelector("#panel-totals [data-kpi=" + name + "] .value");
          out[name] = {text: n.textContent, value: n.getAttribute("data-value")}; return out; }, {}))""")
    result: dict[str, Any] = json.loads(value)
    return result


def open_dashboard(chromium: Chromium, url: str, width: int, height: int, mobile: bool) -> Page:
    page = chromium.new_page(width, height, mobile=mobile)
    page.goto(url + "/dashboard")
    return page


@pytest.mark.parametrize(("name", "width", "height", "mobile"), VIEWPORTS, ids=[v[0] for v in VIEWPORTS])
def test_dashboard_shows_what_metrics_says(start_proxy: Any, chromium: Chromium, name: str, width: int,
                                           height: int, mobile: bool) -> None:
    proxy = start_proxy()
    traffic(proxy)
    page = open_dashboard(chromium, proxy.url, width, height, mobile)
    try:
        page.wait_for(READY.format(polls=0))
        page.wait_for("document.querySelectorAll('#panel-models tbody tr[data-model]').length === 2")
        # ASSERTION AGAINST /metrics: once its numbers have settled, a fresh poll of the page shows them.
        metrics = settled_metrics(proxy)
        page.evaluate("window.cachegateDashboard.refresh()")  # resolves once the page has re-rendered
        values = shown(page)
        assert httpx.get(proxy.url + "/metrics").json()["cache_performance"] == metrics["cache_performance"], \
            "polling /metrics from the dashboard must not count as traffic"
        # the usage history is written a moment after the requests: poll until the timeline has it
        page.wait_for("(window.cachegateDashboard.refresh(), !!document.querySelector('#panel-timeline svg rect'))")
        page.pump(0.3)  # let late console messages arrive
        page.screenshot(ARTIFACTS / f"dashboard-{name}.png")
        assert page.errors == [], page.errors
        performance = metrics["cache_performance"]
        assert performance["total_requests"] == 11
        assert float(values["requests"]["value"]) == performance["total_requests"]
        assert values["requests"]["text"] == str(performance["total_requests"])
        assert float(values["hit-rate"]["value"]) == performance["hit_rate_percent"]
        assert values["hit-rate"]["text"] == f"{performance['hit_rate_percent']:.1f}%"
        assert float(values["tokens-saved"]["value"]) == metrics["token_usage"]["tokens_saved"]
        assert float(values["cost-saved"]["value"]) == pytest.approx(metrics["cost_analysis"]["cost_saved_usd"])
        assert page.text("#conn-text") == "Live"
        assert page.text("#countdown").startswith("Refresh in")  # type: ignore[union-attr]
        assert page.evaluate("document.querySelectorAll('#panel-recent tbody .badge.exact_hit').length") > 0
        assert page.evaluate("document.querySelectorAll('[data-service]').length") >= 1
        legend = page.text("#panel-outcomes [data-part=legend]") or ""
        assert f"Exact hits {performance['exact_hits']}" in legend and f"Bypassed {performance['bypassed']}" in legend
        # the model table sorts by a column on a click
        page.evaluate("document.querySelector('#panel-models th[data-sort=model]').click()")
        assert page.evaluate("Array.from(document.querySelectorAll('#panel-models tbody tr')).map(function (r) "
                             "{ return r.getAttribute('data-model'); }).join(',')") == "gpt-4o,gpt-4o-mini"
        # the page fits the viewport's width: tables scroll inside their panels, the page does not
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        page.close()


def test_dashboard_says_when_the_proxy_is_gone(start_proxy: Any, chromium: Chromium) -> None:
    proxy = start_proxy()
    traffic(proxy)
    page = open_dashboard(chromium, proxy.url, 1366, 768, False)
    try:
        page.wait_for(READY.format(polls=0))
        assert page.text(KPI.format("requests")) == "11"
        proxy.stop()
        page.evaluate("window.cachegateDashboard.refresh()")
        page.wait_for("document.getElementById('conn-text').textContent === 'Disconnected'")
        page.screenshot(ARTIFACTS / "dashboard-disconnected.png")
        assert page.evaluate("getComputedStyle(document.getElementById('banner')).display") == "block"
        assert "Disconnected" in (page.text("#banner") or "")
        assert page.text(KPI.format("requests")) == NO_VALUE  # no stale numbers
        assert page.text(KPI.format("hit-rate")) == NO_VALUE
        # only the failed loads themselves, no script errors
        assert [e for e in page.errors if not e.startswith("network:")] == [], page.errors
    finally:
        page.close()


def test_dashboard_asks_for_the_monitor_key(start_proxy: Any, chromium: Chromium) -> None:
    proxy = start_proxy(monitor_api_key="mon-key-1234")
    traffic(proxy)
    page = open_dashboard(chromium, proxy.url, 1366, 768, False)
    try:
        page.wait_for("document.getElementById('login').open === true")
        assert page.text("#conn-text") == "Locked"
        page.screenshot(ARTIFACTS / "dashboard-locked.png", full_page=False)
        page.evaluate("document.getElementById('login-key').value = 'wrong';"
                      "document.getElementById('login-form').requestSubmit()")
        page.wait_for("document.getElementById('login-error').textContent.length > 0")
        page.evaluate("document.getElementById('login-key').value = 'mon-key-1234';"
                      "document.getElementById('login-form').requestSubmit()")
        page.wait_for(READY.format(polls=0))
        assert page.text(KPI.format("requests")) == "11"
        assert page.evaluate("document.getElementById('login').open") is False
        # the session is kept: a reload needs no key
        page.goto(proxy.url + "/dashboard")
        page.wait_for(READY.format(polls=0))
        assert page.evaluate("document.getElementById('login').open") is False
        unexpected = [e for e in page.errors if "401" not in e]
        assert unexpected == [], page.errors
    finally:
        page.close()


def cache_state(proxy: ProxyServer, *models: str) -> list[str]:
    client = proxy.client()
    out = []
    for model in models:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "question 0"}])
        out.append(raw.headers["x-cache"])
    return out


CLEAR_MODEL = "document.querySelector('#panel-models button[data-clear-model=\"gpt-4o\"]').click()"


def confirm_clear(page: Page, *, key: str | None = None, panel: str = "models") -> str:
    """Confirm the open dialog; what the panel the clear was started from says about it."""
    result_js = json.dumps(f"#panel-{panel} [data-part=result]")
    page.wait_for("document.getElementById('confirm').open === true")
    if key is not None:
        assert page.evaluate("!document.getElementById('admin-key-field').classList.contains('hidden')")
        page.evaluate(f"document.getElementById('admin-key').value = {json.dumps(key)}")
    page.evaluate(f"document.querySelector({result_js}).textContent = ''; "
                  "document.getElementById('confirm-ok').click()")
    result = page.wait_for(f"(function () {{ var t = document.querySelector({result_js}).textContent;"
                           " return t && t !== 'Clearing…' ? t : ''; })()")
    return str(result)


def test_clear_a_model_from_the_page(start_proxy: Any, chromium: Chromium) -> None:
    proxy = start_proxy(admin_api_key="adm-key-5678")
    cache_state(proxy, "gpt-4o", "gpt-4o-mini")
    wait_for_stores(proxy)
    assert cache_state(proxy, "gpt-4o", "gpt-4o-mini") == ["HIT", "HIT"]
    page = open_dashboard(chromium, proxy.url, 1366, 768, False)
    try:
        page.wait_for("!!document.querySelector('#panel-models button[data-clear-model=\"gpt-4o\"]')")
        page.evaluate(CLEAR_MODEL)
        assert "gpt-4o" in (page.text("#confirm-text") or "")
        page.screenshot(ARTIFACTS / "dashboard-confirm.png", full_page=False)
        page.evaluate("document.getElementById('confirm-cancel').click()")  # cancelled: nothing happens
        assert cache_state(proxy, "gpt-4o") == ["HIT"]
        page.evaluate(CLEAR_MODEL)
        assert confirm_clear(page, key="wrong").startswith("Not cleared (401)")
        page.evaluate(CLEAR_MODEL)
        assert confirm_clear(page, key="adm-key-5678") == "Removed 1 exact entry."
        assert "adm-key-5678" not in page.evaluate("document.documentElement.outerHTML")
        assert cache_state(proxy, "gpt-4o", "gpt-4o-mini") == ["MISS", "HIT"]
        # a whole tier from the admin form (the key is remembered for the page's lifetime)
        page.evaluate("document.querySelector('#panel-admin [data-part=tier]').value = 'exact';"
                      "document.querySelector('#panel-admin [data-part=clear]').click()")
        assert confirm_clear(page, panel="admin").startswith("Removed 2 exact entries")
        assert [e for e in page.errors if "401" not in e] == [], page.errors
    finally:
        page.close()


def drawn(page: Page) -> list[list[str]]:
    """[id, kind, title] of every panel on the page, top to bottom."""
    value: list[list[str]] = page.evaluate(
        "Array.from(document.querySelectorAll('#panels > [data-panel]')).map(function (n) { return "
        "[n.getAttribute('data-panel'), n.getAttribute('data-kind'), n.getAttribute('aria-label')]; })")
    return value


def listed(panels: list[dict[str, Any]]) -> list[list[str]]:
    return [[panel["id"], panel["kind"], panel["title"]] for panel in panels]


SEMANTIC_STATS = ("entries", "lookups", "hits", "shadow_hits", "misses", "refusals", "stored", "errors")


def settled_semantic(proxy: ProxyServer, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = httpx.get(proxy.url + "/metrics/semantic").json()
    while True:
        time.sleep(0.2)
        now = httpx.get(proxy.url + "/metrics/semantic").json()
        if all(now[name] == last[name] for name in SEMANTIC_STATS) or time.monotonic() > deadline:
            result: dict[str, Any] = now
            return result
        last = now


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
    page = open_dashboard(chromium, proxy.url, 1366, 768, False)
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
            stats = settled_semantic(proxy)
            page.evaluate("window.cachegateDashboard.refresh()")
            values = page.evaluate("JSON.stringify(Array.from(document.querySelectorAll("
                                   "'#panel-semantic [data-stat] .value')).reduce(function (out, n) {"
                                   " out[n.parentNode.getAttribute('data-stat')] = n.getAttribute('data-value');"
                                   " return out; }, {}))")
            assert {name: float(value) for name, value in json.loads(values).items()} == {
                name: stats[name] for name in SEMANTIC_STATS}
            assert stats["lookups"] > 0 and stats["entries"] > 0  # numbers, not a page of zeros
            assert page.text("#panel-semantic [data-part=hint]") == "serve · threshold 0.9"
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
    page = open_dashboard(chromium, proxy.url, 1366, 768, False)
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
