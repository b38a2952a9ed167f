"""``/probe`` in a real (headless) Chromium after real cycles against the simulator: the same numbers as
``/probe/api/*``, filters and sorting that work, the microscope and compare, the monitor key, no console
errors, laptop and phone widths. Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.probe.conftest import StartMonitor
from tests.integration.probe.helpers import advance, api, cycle_done, scheduler
from tests.support.browser import ARTIFACTS, Chromium, Page
from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

MODELS = ("sim-openai", "sim-llama", "sim-deepseek", "sim-kimi", "sim-silent", "sim-claude")
VIEWPORTS = [("laptop", 1366, 768, False), ("phone", 390, 844, True)]
READY = "window.cachegateProbe && window.cachegateProbe.state.polls > {polls} && window.cachegateProbe.state.connected"
ROWS = ("Array.from(document.querySelectorAll('#models tbody tr[data-model]'))"
        ".map(function (r) { return r.getAttribute('data-model'); })")


@pytest.fixture
def probed(start_monitor: StartMonitor, psim: SimulatorServer) -> Iterator[ProxyServer]:
    """Two cycles of six models, so the sparklines and the trend have more than one point."""
    proxy = start_monitor(probe_models=MODELS, probe_tests=("basic", "hints"))
    first = cycle_done(proxy)
    advance(psim, 600.0)
    cycle_done(proxy, after=first["id"])
    yield proxy


def open_page(chromium: Chromium, proxy: ProxyServer, width: int = 1366, height: int = 768,
              mobile: bool = False) -> Page:
    page = chromium.new_page(width, height, mobile=mobile)
    page.goto(proxy.url + "/probe")
    page.wait_for(READY.format(polls=0))
    return page


def cells(page: Page) -> dict[str, dict[str, Any]]:
    raw = page.evaluate("""JSON.stringify(Array.from(document.querySelectorAll('#models tbody tr[data-model]'))
        .reduce(function (out, row) { var cols = {};
          row.querySelectorAll('td[data-col]').forEach(function (td) {
            cols[td.getAttribute('data-col')] = {value: td.getAttribute('data-value'), text: td.textContent}; });
          out[row.getAttribute('data-model')] = cols; return out; }, {}))""")
    shown: dict[str, dict[str, Any]] = json.loads(raw)
    return shown


def number(value: str | None) -> float | None:
    return None if value is None else float(value)


@pytest.mark.parametrize(("name", "width", "height", "mobile"), VIEWPORTS, ids=[v[0] for v in VIEWPORTS])
def test_the_page_shows_what_the_api_says(probed: ProxyServer, chromium: Chromium, name: str, width: int,
                                          height: int, mobile: bool) -> None:
    page = open_page(chromium, probed, width, height, mobile)
    try:
        models = {m["model"]: m for m in api(probed, "models")["models"]}
        stats, usage, sparks = api(probed, "stats"), api(probed, "usage"), api(probed, "sparklines")["models"]
        shown = cells(page)
        assert set(shown) == set(MODELS) == set(models)
        for model, row in shown.items():
            m = models[model]
            assert row["model"]["value"] == model and row["model"]["text"] == model
            assert row["verdict"]["value"] == m["verdict"]
            assert row["provider"]["value"] == (m["provider"] or "Unknown")
            for key in ("cache_rate", "hit_ratio", "tokens_spent", "advertised_cache_price", "since", "speedup"):
                assert number(row[key]["value"]) == m[key], (model, key)
            rate = m["cache_rate"]
            assert row["cache_rate"]["text"] == ("\u2013" if rate is None else f"{rate * 100:.1f}%")
            assert json.loads(row["spark"]["value"]) == [p["cache_rate"] for p in sparks[model]]
            assert len(json.loads(row["spark"]["value"])) == 2  # two cycles
        assert number(page.evaluate("document.getElementById('kpi-models').getAttribute('data-value')")) == \
            stats["models_tested"]
        assert number(page.evaluate("document.getElementById('kpi-caching').getAttribute('data-value')")) == \
            stats["caching_models"]
        assert number(page.evaluate("document.getElementById('kpi-rate').getAttribute('data-value')")) == \
            stats["mean_cache_rate"]
        assert page.text("#kpi-rate") == f"{stats['mean_cache_rate'] * 100:.1f}%"
        assert page.evaluate("document.getElementById('health').getAttribute('data-status')") == \
            stats["health"]["status"]
        assert stats["health"]["rule"] in (page.text("#health-rule") or "")
        for key, id_ in (("requests", "usage-requests"), ("prompt_tokens", "usage-prompt"),
                         ("cached_tokens", "usage-cached"), ("tokens", "usage-tokens")):
            assert number(page.evaluate(f"document.getElementById('{id_}').getAttribute('data-value')")) == \
                usage["totals"][key]
        bars = page.evaluate("document.querySelectorAll('#chart-bars rect[data-model]').length")
        assert bars == sum(1 for m in models.values() if m["cache_rate"] is not None)
        assert page.evaluate("document.querySelectorAll('#chart-trend circle').length") >= 1
        page.pump(0.3)
        page.screenshot(ARTIFACTS / f"probe-{name}.png")
        assert page.errors == [], page.errors
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # tables scroll, the page does not
    finally:
        page.close()


COLUMNS = ("model", "provider", "verdict", "cache_rate", "hit_ratio", "spark", "min_prefix_tokens", "step_tokens",
           "ttl", "speedup", "advertised_cache_price", "since", "tokens_spent")


def sort_value(model: dict[str, Any], key: str, sparks: dict[str, list[dict[str, Any]]]) -> Any:
    """What the page sorts a column by: the TTL's lower bound, the mean of the sparkline's known rates."""
    if key == "ttl":
        return model["ttl_seconds"][0] if isinstance(model["ttl_seconds"], list) else None
    if key == "spark":
        rates = [p["cache_rate"] for p in sparks.get(model["model"], []) if p["cache_rate"] is not None]
        return sum(rates) / len(rates) if rates else None
    value = model.get(key) or None if key == "provider" else model.get(key)
    return value.casefold() if isinstance(value, str) else value


def expected_order(models: list[dict[str, Any]], key: str, sparks: dict[str, list[dict[str, Any]]],
                   descending: bool) -> list[str]:
    """Known values in order (ties by model id), unknown ones last by model id, whichever the direction."""
    by_id = sorted(models, key=lambda m: m["model"])
    known = [m for m in by_id if sort_value(m, key, sparks) is not None]
    unknown = [m["model"] for m in by_id if sort_value(m, key, sparks) is None]
    known.sort(key=lambda m: sort_value(m, key, sparks), reverse=descending)  # stable: ties keep the id order
    return [m["model"] for m in known] + unknown


def check_every_column_sorts(page: Page, proxy: ProxyServer) -> None:
    """Each column, clicked once and then again, orders the rows by its values, ascending then descending."""
    models, sparks = api(proxy, "models")["models"], api(proxy, "sparklines")["models"]
    page.evaluate("document.querySelector('#models th[data-sort=tokens_spent]').click()")  # model is not the key
    for key in COLUMNS:
        header = f"document.querySelector('#models th[data-sort={key}]')"
        page.evaluate(f"{header}.click()")
        assert page.evaluate(f"{header}.getAttribute('aria-sort')") == "ascending"
        assert page.evaluate(ROWS) == expected_order(models, key, sparks, descending=False), key
        page.evaluate(f"{header}.click()")
        assert page.evaluate(f"{header}.getAttribute('aria-sort')") == "descending"
        assert page.evaluate(ROWS) == expected_order(models, key, sparks, descending=True), key


@pytest.fixture
def measured(start_monitor: StartMonitor) -> Iterator[ProxyServer]:
    """One cycle that measured every column: minimum, step, speed-up, and a TTL search kept short (every gap
    within the cycle), so the numeric columns have values that differ between the models."""
    proxy = start_monitor(probe_models=MODELS, probe_tests=("basic", "hints", "sizes", "latency", "ttl"),
                          probe_ttl_range=(1.0, 20.0))
    cycle_done(proxy)
    yield proxy


def test_every_column_sorts_by_its_values(measured: ProxyServer, chromium: Chromium) -> None:
    page = open_page(chromium, measured)
    try:
        models = api(measured, "models")["models"]
        for key in ("min_prefix_tokens", "step_tokens"):  # the data can tell a sort from none
            assert len({m[key] for m in models}) > 2, key
        check_every_column_sorts(page, measured)
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_filters_and_sorting(probed: ProxyServer, chromium: Chromium) -> None:
    page = open_page(chromium, probed)
    try:
        models = {m["model"]: m for m in api(probed, "models")["models"]}
        assert page.evaluate(ROWS) == sorted(MODELS)  # by model id at first
        page.evaluate("document.querySelector('#models th[data-sort=model]').click()")
        assert page.evaluate(ROWS) == sorted(MODELS, reverse=True)
        page.evaluate("document.querySelector('#models th[data-sort=cache_rate]').click()")
        known = sorted((m for m in models.values() if m["cache_rate"] is not None),
                       key=lambda m: (m["cache_rate"], m["model"]))
        unknown = sorted(m["model"] for m in models.values() if m["cache_rate"] is None)
        assert page.evaluate(ROWS) == [m["model"] for m in known] + unknown  # unknown last
        page.evaluate("document.querySelector('#models th[data-sort=cache_rate]').click()")
        descending = sorted(known, key=lambda m: (-m["cache_rate"], m["model"]))
        assert page.evaluate(ROWS) == [m["model"] for m in descending] + unknown
        check_every_column_sorts(page, probed)

        def choose(select: str, value: str) -> Any:
            page.evaluate(f"var s = document.getElementById('{select}'); s.value = {json.dumps(value)};"
                          "s.dispatchEvent(new Event('change'))")
            return sorted(page.evaluate(ROWS))

        providers = page.evaluate("Array.from(document.getElementById('filter-provider').options).map("
                                  "function (o) { return o.value; })")
        assert providers == ["", *sorted({m["provider"] or "Unknown" for m in models.values()})]
        assert choose("filter-provider", "Meta") == ["sim-llama"]
        assert choose("filter-provider", "") == sorted(MODELS)
        caching = sorted(m for m, v in models.items() if v["verdict"] in ("caches", "routing_limited", "needs_hint"))
        assert choose("filter-status", "caching") == caching
        assert choose("filter-status", "no_caching") == ["sim-llama"]
        assert choose("filter-status", "unknown") == ["sim-silent"]
        assert page.text("#filter-count") == f"1 of {len(MODELS)} models"
        choose("filter-status", "")
        page.evaluate("var i = document.getElementById('filter-text'); i.value = 'KIMI';"
                      "i.dispatchEvent(new Event('input'))")
        assert page.evaluate(ROWS) == ["sim-kimi"]
        page.evaluate("document.querySelector('#models button.copy[data-copy=\"sim-kimi\"]').click()")
        page.wait_for("document.querySelector('#models button.copy').getAttribute('data-copied') !== null")
        assert page.errors == [], page.errors
    finally:
        page.close()


def sparks_shown(page: Page) -> dict[str, int]:
    return {model: len(json.loads(row["spark"]["value"])) for model, row in cells(page).items()}


def test_the_countdown_refreshes_the_table_when_it_reaches_zero(probed: ProxyServer, psim: SimulatorServer,
                                                                 chromium: Chromium) -> None:
    page = open_page(chromium, probed)
    try:
        assert sparks_shown(page) == dict.fromkeys(MODELS, 2)
        countdown = page.text("#countdown") or ""
        assert re.fullmatch(r"Refresh in \d+ s", countdown), countdown
        # a third cycle: the API has news the page has not fetched
        second = scheduler(probed)["last_cycle"]
        advance(psim, 600.0)
        cycle_done(probed, after=second["id"])
        assert {m: len(points) for m, points in api(probed, "sparklines")["models"].items()} == dict.fromkeys(MODELS, 3)
        polls = page.evaluate("window.cachegateProbe.state.polls")
        # shorten the wait the page counts down (its own state, not a clock of the test), then let it reach 0
        page.evaluate("window.cachegateProbe.state.left = 2")
        page.wait_for(f"window.cachegateProbe.state.polls > {polls}", timeout=60)
        assert sparks_shown(page) == dict.fromkeys(MODELS, 3)  # the table was drawn again from the new data
        page.wait_for("window.cachegateProbe.state.left > 2", timeout=60)  # and the countdown started over
        assert re.fullmatch(r"Refresh in \d+ s", page.text("#countdown") or "")
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_microscope_and_compare_on_the_page(probed: ProxyServer, chromium: Chromium) -> None:
    page = open_page(chromium, probed)
    try:
        page.evaluate("document.getElementById('scope-model').value = 'sim-claude';"
                      "document.getElementById('scope-run').click()")
        page.wait_for("!document.getElementById('scope-out').classList.contains('hidden')", timeout=60)
        # sim-claude needs cache_control: the microscope tests it with that hint, and it hits
        assert page.text("#scope-status") == "sim-claude with cache_control: caches"
        assert page.evaluate("document.querySelectorAll('#scope-timings tbody tr').length") == 4
        curl = page.text("#scope-curl") or ""
        assert curl.startswith("curl -sS -X POST") and '"cache_control"' in curl
        evidence = json.loads(page.text("#scope-evidence") or "[]")
        assert [ex["role"] for ex in evidence] == ["prime", "repeat", "repeat", "repeat"]
        page.evaluate("document.getElementById('cmp-a').value = 'sim-openai';"
                      "document.getElementById('cmp-b').value = 'sim-llama';"
                      "document.getElementById('cmp-run').click()")
        page.wait_for("!document.getElementById('cmp-table').classList.contains('hidden')", timeout=60)
        assert (page.text("#cmp-head-a"), page.text("#cmp-head-b")) == ("sim-openai", "sim-llama")
        rows = json.loads(page.evaluate("JSON.stringify(Array.from(document.querySelectorAll('#cmp-table tbody tr'))"
                                        ".map(function (r) { return Array.from(r.cells).map(function (c) "
                                        "{ return c.textContent; }); }))"))
        assert rows[0] == ["Verdict", "caches", "no caching"]
        page.pump(0.3)
        page.screenshot(ARTIFACTS / "probe-microscope.png")
        assert page.errors == [], page.errors
    finally:
        page.close()


def test_the_page_asks_for_the_monitor_key(start_monitor: StartMonitor, chromium: Chromium) -> None:
    proxy = start_monitor(monitor_api_key="mon-key-1234")
    cycle_done(proxy, key="mon-key-1234")
    assert httpx.get(proxy.url + "/probe").status_code == 401  # the page itself, which asks for the key
    page = chromium.new_page(1366, 768)
    try:
        page.goto(proxy.url + "/probe")
        page.wait_for("document.getElementById('login').open === true")
        assert page.text("#conn-text") == "Locked"
        page.evaluate("document.getElementById('login-key').value = 'wrong';"
                      "document.getElementById('login-form').requestSubmit()")
        page.wait_for("document.getElementById('login-error').textContent.length > 0")
        page.evaluate("document.getElementById('login-key').value = 'mon-key-1234';"
                      "document.getElementById('login-form').requestSubmit()")
        page.wait_for(READY.format(polls=0))
        assert page.evaluate(ROWS) == ["sim-openai"]
        assert [e for e in page.errors if "401" not in e] == [], page.errors
    finally:
        page.close()


def test_the_dashboard_links_to_the_page(start_monitor: StartMonitor, chromium: Chromium) -> None:
    from tests.support.dashboard import READY as DASHBOARD_READY

    proxy = start_monitor()
    panels = httpx.get(proxy.url + "/dashboard/panels").json()["panels"]
    assert [p for p in panels if p["id"] == "probe"] == [
        {"id": "probe", "title": "Prompt-cache probe", "kind": "link", "source": "/probe", "order": 95,
         "note": "Which models cache your prompts, since when, and for how long."}]
    page = chromium.new_page(1366, 768)
    try:
        page.goto(proxy.url + "/dashboard")
        page.wait_for(DASHBOARD_READY.format(polls=0))
        page.wait_for("!!document.querySelector('#panel-probe a')")
        assert page.evaluate("document.querySelector('#panel-probe a').getAttribute('href')") == "/probe"
        page.evaluate("document.querySelector('#panel-probe a').click()")
        page.wait_for("location.pathname === '/probe' && window.cachegateProbe && "
                      "window.cachegateProbe.state.polls > 0")
        assert page.errors == [], page.errors
    finally:
        page.close()
