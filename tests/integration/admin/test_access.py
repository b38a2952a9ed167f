"""Who may use the operator's routes: the admin key (set, or generated into DATA_DIR), same-origin only,
monitor key, the dashboard's session, and secrets kept out of answers and logs."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.proxy import admin_key

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


def test_without_an_admin_key_one_is_generated_into_data_dir(start_proxy: Any, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    # issue 10.10: no loopback trust any more; the first start writes a key only the operator can read
    with caplog.at_level(logging.INFO, logger="cachegate.access"):
        proxy = start_proxy()
    path = tmp_path / "data" / "admin_api_key"
    key = path.read_text().strip()
    assert len(key) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert str(path) in logged and "ADMIN_API_KEY" in logged and key not in logged
    assert httpx.get(proxy.url + "/admin/stats").status_code == 401  # we are on 127.0.0.1: no longer enough
    assert httpx.get(proxy.url + "/admin/stats", headers={"x-api-key": key}).status_code == 200
    again = start_proxy()  # a restart (or a replica on the same DATA_DIR) keeps the key
    assert admin_key(again) == key == path.read_text().strip()


def test_the_generated_key_is_the_admin_key_for_the_dashboard_too(start_proxy: Any) -> None:
    proxy = start_proxy()
    data = httpx.get(proxy.url + "/dashboard/data").json()
    assert data["admin_key_required"] is True  # the page asks for it before an admin action
    assert httpx.get(proxy.url + "/admin/stats", headers={"x-api-key": admin_key(proxy)}).json()["access"] == \
        {"admin_key": True, "admin_key_source": "generated", "monitor_key": False}


@pytest.mark.parametrize("headers", [
    {},  # a reverse proxy on this host that adds no X-Forwarded-For (nginx, HAProxy by default)
    {"host": "rebound.example:3000", "origin": "http://rebound.example:3000"},  # DNS rebinding: same "origin"
    {"x-forwarded-for": "203.0.113.9"},
])
def test_a_loopback_peer_is_not_an_admin(start_proxy: Any, headers: dict[str, str]) -> None:
    proxy = start_proxy()
    for method, path in (("GET", "/admin/config"), ("POST", "/admin/cache/clear")):
        refused = httpx.request(method, proxy.url + path, headers=headers)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.json()["error"]["type"] == "authentication_error"


def test_a_cross_site_page_cannot_drive_admin_routes(start_proxy: Any) -> None:
    proxy = start_proxy(admin_api_key=ADMIN)
    evil = httpx.post(proxy.url + "/admin/cache/clear", headers={"origin": "http://evil.example", "x-api-key": ADMIN})
    assert evil.status_code == 403
    same = httpx.post(proxy.url + "/admin/cache/clear", headers={"origin": proxy.url, "x-api-key": ADMIN})
    assert same.status_code == 200


@pytest.mark.parametrize("origins", [("*",), ("https://app.example",)])
def test_allowed_origins_never_open_admin_routes(start_proxy: Any, origins: tuple[str, ...]) -> None:
    proxy = start_proxy(admin_api_key=ADMIN, allowed_origins=origins)
    origin = "https://app.example"
    preflight = httpx.options(proxy.url + "/admin/cache/clear", headers={
        "origin": origin, "access-control-request-method": "POST", "access-control-request-headers": "x-api-key"})
    assert "access-control-allow-origin" not in preflight.headers
    for method, path in (("POST", "/admin/cache/clear"), ("GET", "/admin/config")):
        refused = httpx.request(method, proxy.url + path, headers={"origin": origin, "x-api-key": ADMIN})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "cross_site_request"
        assert "access-control-allow-origin" not in refused.headers
    # the proxied API still gets its CORS headers
    models = httpx.get(proxy.base_url + "/models", headers={"origin": origin})
    assert models.headers["access-control-allow-origin"] in (origin, "*")


def test_no_key_file_when_the_admin_key_is_set(start_proxy: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cachegate.access"):
        start_proxy(admin_api_key=ADMIN)
    assert not (tmp_path / "data" / "admin_api_key").exists()
    assert not any("admin_api_key" in r.getMessage() for r in caplog.records)


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


async def test_a_remote_client_is_refused_without_the_key(tmp_path: Any) -> None:
    from proxy.app import create_app
    from tests.support.proxy import proxy_settings

    app = create_app(proxy_settings("http://127.0.0.1:9/v1", tmp_path))
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with app.router.lifespan_context(app):
        key = (tmp_path / "data" / "admin_api_key").read_text().strip()
        for transport in (remote, local):
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
                refused = await client.get("/admin/config")
                assert refused.status_code == 401
                assert (await client.get("/admin/config", headers={"x-api-key": "anything"})).status_code == 401
                assert (await client.get("/admin/config", headers={"x-api-key": key})).status_code == 200
