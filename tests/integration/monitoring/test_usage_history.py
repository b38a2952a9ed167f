"""``/metrics/usage``: filters by time and model, buckets, 400 on bad input, retention at start."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import httpx

from proxy.monitoring.schema import SCHEMA
from proxy.monitoring.usage import UsageStore
from proxy.platform.sqlite import Database
from tests.integration.monitoring.helpers import chat, usage_of
from tests.support.proxy import ProxyServer


def usage(proxy: ProxyServer, **params: str) -> httpx.Response:
    return httpx.get(proxy.url + "/metrics/usage", params=params, timeout=10)


def test_usage_rows_filter_by_time_and_model(start_proxy: Any) -> None:
    proxy = start_proxy()
    prompt, completion = usage_of(chat(proxy))
    chat(proxy)
    chat(proxy, model="gpt-4o")
    httpx.get(proxy.url + "/metrics")  # not a proxied request: no row

    body = usage(proxy).json()
    assert body["bucket"] == "hour"
    totals = body["totals"]
    assert (totals["requests"], totals["exact_hits"], totals["misses"]) == (3, 1, 2)
    assert totals["tokens_saved"] == prompt + completion
    assert [(row["model"], row["requests"]) for row in body["by_model"]] == [("gpt-4o-mini", 2), ("gpt-4o", 1)]
    assert sum(point["requests"] for point in body["timeseries"]) == 3

    only = usage(proxy, model="gpt-4o", bucket="day").json()
    assert only["totals"]["requests"] == 1
    assert [row["model"] for row in only["by_model"]] == ["gpt-4o"]
    assert len(only["timeseries"]) == 1
    assert only["timeseries"][0]["bucket"].endswith("T00:00:00Z")

    now = time.time()
    assert usage(proxy, **{"from": str(now + 60), "to": str(now + 120)}).json()["totals"]["requests"] == 0
    assert usage(proxy, to=str(now - 3600)).json()["totals"]["requests"] == 0
    today = time.strftime("%Y-%m-%d", time.gmtime(now - 86400))
    assert usage(proxy, **{"from": today}).json()["totals"]["requests"] == 3


def test_rows_carry_the_key_hash_never_the_key(start_proxy: Any, tmp_path: Any) -> None:
    proxy = start_proxy()
    chat(proxy, api_key="sk-secret-key-0001")
    usage(proxy)  # flushes
    conn = sqlite3.connect(tmp_path / "data" / "monitoring.sqlite3")
    [(key_hash, request_id, outcome, status)] = conn.execute(
        "SELECT api_key_hash, request_id, outcome, status FROM usage").fetchall()
    conn.close()
    assert len(key_hash) == 64 and "secret" not in key_hash
    assert (outcome, status) == ("miss", 200)
    assert request_id


def test_bad_dates_and_buckets_are_400_naming_them(start_proxy: Any) -> None:
    proxy = start_proxy()
    response = usage(proxy, **{"from": "yesterday", "bucket": "week"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "from,bucket"
    assert "'from'" in error["message"] and "'bucket'" in error["message"]
    assert usage(proxy, to="2026-13-45").json()["error"]["param"] == "to"
    backwards = usage(proxy, **{"from": "2026-02-22", "to": "2026-02-21"})
    assert (backwards.status_code, backwards.json()["error"]["param"]) == (400, "from")


def test_retention_deletes_old_rows(start_proxy: Any, tmp_path: Any) -> None:
    first = start_proxy(usage_retention_days=30)
    chat(first)
    first.stop()

    async def old_rows() -> None:  # written the way the proxy writes them: rows and their hourly sums
        db = Database(tmp_path / "data" / SCHEMA.filename, SCHEMA.migrations)
        await db.open()
        store = UsageStore(db, retention_days=30)
        now = time.time()
        for age_days in (45, 31, 29):
            store.append((now - age_days * 86400, "old", "/v1/chat/completions", "gpt-4o-mini", 0, 0, 0, "miss", None,
                          200, 1.0, 0, None, 0.0, 0.0))
        await store.flush()
        await db.close()

    asyncio.run(old_rows())

    second = start_proxy(usage_retention_days=30)  # the retention job runs at start, then hourly
    body = usage(second, **{"from": "0"}).json()
    assert body["totals"]["requests"] == 2  # the fresh row and the 29-day-old one
