"""The dashboard in a real (headless) Chromium: what a person sees after real traffic, when the proxy is
gone, behind the monitor key, and the admin actions behind their confirmation.

Screenshots are saved under ``test-artifacts/`` (laptop 1366x768 and phone 390x844, full page).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.browser import ARTIFACTS, Chromium, Page
from tests.support.dashboard import NO_VALUE, READY, open_dashboard, settled, traffic, wait_for_stores
from tests.support.proxy import ProxyServer

VIEWPORTS = [("laptop", 1366, 768, False), ("phone", 390, 844, True)]
KPI = "#panel-totals [data-kpi={}] .value"  # a number of the totals panel


def settled_metrics(proxy: ProxyServer) -> dict[str, Any]:
    return settled(proxy, "/metrics", ("cache_performance", "token_usage", "cost_analysis"))


def shown(page: Page) -> dict[str, Any]:
    value = page.evaluate("""JSON.stringify(["requests", "hit-rate", "tokens-saved", "cost-saved", "savings"]
        .reduce(function (out, name) {
          var n = document.querySelector("#panel-totals [data-kpi=" + name + "] .value");
          out[name] = {text: n.textContent, value: n.getAttribute("data-value")}; return out; }, {}))""")
    result: dict[str, Any] = json.loads(value)
    return result


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

