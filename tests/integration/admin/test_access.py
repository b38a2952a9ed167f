"""Who may use the operator's routes: admin key, loopback-only, monitor key, the dashboard's session,
and secrets kept out of answers and logs."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

ADMIN = "adm-0123456789-secret"
MONITOR = "mon-9876543210-secret"
UPSTREAM = "sk-upstream-top-secret"


@pytest.mark.parametrize("path", ["/admin/stats", "/admin/config"])
def test_admin_needs_the_admin_key(start_proxy: Any, path: str) -> None:
    proxy = start_proxy(admin_api_key=ADMIN)
    missing = httpx.get(proxy.url + path)
    wrong = httpx.get(proxy.url + path, headers={"x-api-key": "not-it"})
    wrong_bearer = httpx.get(proxy.url + path, headers={"authorization": f"Bearer {ADMIN}x"})
    for refused in (missing, wrong, wrong_bearer):
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert ADMIN not in refused.text
    assert httpx.get(proxy.url + path, headers={"authorization": f"Bearer {ADMIN}"}).status_code == 200
    assert httpx.get(proxy.url + path, headers={"x-api-key": ADMIN}).status_code == 200


def test_without_an_admin_key_only_loopback_clients(start_proxy: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cachegate.admin"):
        proxy = start_proxy()
    assert any("ADMIN_API_KEY is not set" in r.getMessage() and "loopback" in r.getMessage()
               for r in caplog.records)
    assert httpx.get(proxy.url + "/admin/stats").status_code == 200  # we are on 127.0.0.1
    # A request that a proxy on this host forwarded for somebody else is not a loopback client.
    forwarded = httpx.get(proxy.url + "/admin/stats", headers={"x-forwarded-for": "203.0.113.9"})
    assert forwarded.status_code == 403
    assert forwarded.json()["error"]["code"] == "loopback_only"


def test_a_cross_site_page_cannot_drive_admin_routes(start_proxy: Any) -> None:
    proxy = start_proxy()
    evil = httpx.post(proxy.url + "/admin/cache/clear", headers={"origin": "http://evil.example"})
    assert evil.status_code == 403
    same = httpx.post(proxy.url + "/admin/cache/clear", headers={"origin": proxy.url})
    assert same.status_code == 200


def test_no_warning_when_the_admin_key_is_set(start_proxy: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cachegate.admin"):
        start_proxy(admin_api_key=ADMIN)
    assert not any("ADMIN_API_KEY" in r.getMessage() for r in caplog.records)


def test_monitor_key_guards_metrics_and_dashboard_but_not_health(start_proxy: Any) -> None:
    proxy = start_proxy(admin_api_key=ADMIN, monitor_api_key=MONITOR)
    for path in ("/metrics", "/metrics/prometheus", "/metrics/csv", "/metrics/usage", "/dashboard/data"):
        assert httpx.get(proxy.url + path).status_code == 401, path
        assert httpx.get(proxy.url + path, headers={"x-api-key": "nope"}).status_code == 401, path
        assert httpx.get(proxy.url + path, headers={"authorization": f"Bearer {MONITOR}"}).status_code != 401, path
        assert httpx.get(proxy.url + path, headers={"x-api-key": ADMIN}).status_code != 401, path
    assert httpx.get(proxy.url + "/health").status_code == 200
    # the monitor key does not open admin routes
    assert httpx.get(proxy.url + "/admin/stats", headers={"x-api-key": MONITOR}).status_code == 401


def test_dashboard_asks_for_the_monitor_key_once_per_session(start_proxy: Any) -> None:
    proxy = start_proxy(admin_api_key=ADMIN, monitor_api_key=MONITOR)
    locked = httpx.get(proxy.url + "/dashboard")
    assert locked.status_code == 401
    assert locked.headers["content-type"].startswith("text/html")  # the page, which shows the key prompt
    assert MONITOR not in locked.text and ADMIN not in locked.text
    with httpx.Client(base_url=proxy.url) as browser:
        assert browser.post("/dashboard/session", headers={"x-api-key": "nope"}).status_code == 401
        assert not browser.cookies
        login = browser.post("/dashboard/session", headers={"x-api-key": MONITOR})
        assert login.status_code == 204
        cookie = login.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "max-age" not in cookie.lower() and "expires" not in cookie.lower()  # a session cookie
        assert MONITOR not in cookie
        assert browser.get("/dashboard").status_code == 200
        assert browser.get("/metrics").status_code == 200
        assert browser.get("/metrics/csv").status_code == 200
        assert browser.get("/admin/stats").status_code == 401  # the session is not an admin key
        browser.delete("/dashboard/session")
        assert browser.get("/metrics").status_code == 401


def test_dashboard_headers(start_proxy: Any) -> None:
    proxy = start_proxy()
    page = httpx.get(proxy.url + "/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<title>cachegate" in page.text


def test_secrets_never_appear_in_config_stats_or_logs(start_proxy: Any, redis_url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    redis_with_password = redis_url.replace("redis://", "redis://:redis-pass-secret@")
    with caplog.at_level(logging.DEBUG):
        proxy = start_proxy(admin_api_key=ADMIN, monitor_api_key=MONITOR, upstream_api_key=UPSTREAM,
                            qdrant_api_key="qdrant-secret", redis_url=redis_with_password)
        headers = {"x-api-key": ADMIN}
        config = httpx.get(proxy.url + "/admin/config", headers=headers)
        stats = httpx.get(proxy.url + "/admin/stats", headers=headers)
        httpx.get(proxy.url + "/admin/stats", headers={"x-api-key": "wrong-" + ADMIN})
        httpx.get(proxy.url + "/metrics", headers={"x-api-key": "wrong-" + MONITOR})
    assert config.status_code == 200
    settings = config.json()["settings"]
    assert settings["ADMIN_API_KEY"] == settings["MONITOR_API_KEY"] == settings["UPSTREAM_API_KEY"] == "<redacted>"
    assert settings["REDIS_URL"].startswith("redis://:<redacted>@127.0.0.1:")
    assert settings["CACHE_TTL"] == 86400
    logged = "\n".join(record.getMessage() for record in caplog.records)
    page = httpx.get(proxy.url + "/dashboard", headers=headers).text
    for secret in (ADMIN, MONITOR, UPSTREAM, "qdrant-secret", "redis-pass-secret"):
        for where, text in (("config", config.text), ("stats", stats.text), ("logs", logged), ("page", page)):
            assert secret not in text, f"{secret} leaked into {where}"


async def test_a_remote_client_is_refused_without_an_admin_key(tmp_path: Any) -> None:
    from proxy.app import create_app
    from tests.support.proxy import proxy_settings

    app = create_app(proxy_settings("http://127.0.0.1:9/v1", tmp_path))
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=remote, base_url="http://proxy") as client:
        refused = await client.get("/admin/config")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "loopback_only"
        assert (await client.get("/admin/config", headers={"x-api-key": "anything"})).status_code == 403
    async with httpx.AsyncClient(transport=local, base_url="http://proxy") as client:
        assert (await client.get("/admin/config")).status_code == 200
