"""proxy.access.auth: keys, loopback, the dashboard's session cookie and the check of each guard."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.access.auth import (
    SESSION_COOKIE,
    AccessControl,
    cookie_value,
    is_loopback,
    key_matches,
    make_session,
    presented_key,
    same_origin,
    session_valid,
)
from proxy.component import Guard
from proxy.errors import ForbiddenError, UnauthorizedError
from proxy.settings import Settings


def scope(path: str, client: str = "127.0.0.1", method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": method, "client": (client, 50000)}


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-api-key": "k1"}, "k1"),
    ({"authorization": "Bearer k2"}, "k2"),
    ({"authorization": "bearer  k3 "}, "k3"),
    ({"x-api-key": "k1", "authorization": "Bearer k2"}, "k1"),
    ({"authorization": "Basic abc"}, None),
    ({"authorization": "Bearer "}, None),
    ({}, None),
])
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


def test_key_matches() -> None:
    assert key_matches("secret", "secret")
    assert not key_matches("secret", "Secret")
    assert not key_matches("secre", "secret")
    assert not key_matches(None, "secret")
    assert not key_matches("secret", None)
    assert not key_matches("", "")


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.0.0.1", False), ("192.168.1.2", False), ("::ffff:10.0.0.1", False), ("2001:db8::1", False),
    ("localhost", False), ("", False), (None, False),
])
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_session_cookie_is_an_expiring_signature_not_the_key() -> None:
    value = make_session("monitor-key", now=1000.0)
    assert "monitor-key" not in value
    assert session_valid(value, "monitor-key", now=1001.0)
    assert not session_valid(value, "other-key", now=1001.0)
    assert not session_valid(value, "monitor-key", now=1000.0 + 13 * 3600)  # expired
    expires, _, signature = value.partition(".")
    assert not session_valid(f"{int(expires) + 3600}.{signature}", "monitor-key", now=1001.0)  # extended by hand
    assert not session_valid("garbage", "monitor-key")
    assert not session_valid(None, "monitor-key")
    assert not session_valid(value, None)


def test_cookie_value() -> None:
    headers = {"cookie": f"a=1; {SESSION_COOKIE}=abc.def; b=2"}
    assert cookie_value(headers, SESSION_COOKIE) == "abc.def"
    assert cookie_value(headers, "missing") is None
    assert cookie_value({}, SESSION_COOKIE) is None


def test_same_origin_is_this_server_only() -> None:
    headers = {"host": "127.0.0.1:3000"}
    assert same_origin("http://127.0.0.1:3000", headers)
    assert not same_origin("http://evil.example", headers)
    assert not same_origin("http://127.0.0.1:3001", headers)


class TestAdminGuard:
    def test_with_a_key_only_the_key_opens(self) -> None:
        access = AccessControl(Settings(admin_api_key="adm"))
        assert isinstance(access.check(Guard.ADMIN, scope("/admin/stats"), {}), UnauthorizedError)
        assert isinstance(access.check(Guard.ADMIN, scope("/admin/stats"), {"x-api-key": "wrong"}), UnauthorizedError)
        assert access.check(Guard.ADMIN, scope("/admin/stats"), {"x-api-key": "adm"}) is None
        assert access.check(Guard.ADMIN, scope("/admin/stats", client="203.0.113.9"),
                            {"authorization": "Bearer adm"}) is None

    def test_without_a_key_nothing_opens_not_even_loopback(self) -> None:
        # before the access component has started (and resolved the generated key) every admin call is refused
        access = AccessControl(Settings())
        assert access.admin_key is None and access.admin_key_source is None
        for client in ("127.0.0.1", "::1", "203.0.113.9"):
            refused = access.check(Guard.ADMIN, scope("/admin/stats", client=client), {})
            assert isinstance(refused, UnauthorizedError)
        assert isinstance(access.check(Guard.ADMIN, scope("/admin/stats"), {"x-api-key": ""}), UnauthorizedError)

    def test_allowed_origins_do_not_pass_the_cross_site_check(self) -> None:
        access = AccessControl(Settings(admin_api_key="adm", allowed_origins=("*", "https://app.example")))
        for origin in ("https://app.example", "http://evil.example"):
            refused = access.check(Guard.ADMIN, scope("/admin/cache/clear", method="POST"),
                                   {"x-api-key": "adm", "host": "127.0.0.1:3000", "origin": origin})
            assert isinstance(refused, ForbiddenError) and refused.code == "cross_site_request"

    def test_cross_site_origin_is_refused_even_with_the_key(self) -> None:
        access = AccessControl(Settings(admin_api_key="adm"))
        headers = {"x-api-key": "adm", "host": "127.0.0.1:3000"}
        refused = access.check(Guard.ADMIN, scope("/admin/cache/clear", method="POST"),
                               {**headers, "origin": "http://evil.example"})
        assert isinstance(refused, ForbiddenError) and refused.code == "cross_site_request"
        assert access.check(Guard.ADMIN, scope("/admin/cache/clear", method="POST"),
                            {**headers, "origin": "http://127.0.0.1:3000"}) is None


class TestMonitorGuard:
    def test_open_without_a_monitor_key(self) -> None:
        access = AccessControl(Settings(admin_api_key="adm"))
        for path in ("/metrics", "/metrics/usage", "/dashboard", "/dashboard/data"):
            assert access.check(Guard.MONITOR, scope(path, client="203.0.113.9"), {}) is None

    @pytest.mark.parametrize("path", ["/metrics", "/metrics/prometheus", "/metrics/csv", "/metrics/usage",
                                      "/dashboard", "/dashboard/data"])
    def test_monitor_key_admin_key_or_session(self, path: str) -> None:
        access = AccessControl(Settings(admin_api_key="adm", monitor_api_key="mon"))
        assert isinstance(access.check(Guard.MONITOR, scope(path), {}), UnauthorizedError)
        assert isinstance(access.check(Guard.MONITOR, scope(path), {"x-api-key": "nope"}), UnauthorizedError)
        assert access.check(Guard.MONITOR, scope(path), {"x-api-key": "mon"}) is None
        assert access.check(Guard.MONITOR, scope(path), {"authorization": "Bearer adm"}) is None
        assert access.check(Guard.MONITOR, scope(path), {"cookie": f"{SESSION_COOKIE}={make_session('mon')}"}) \
            is None
        admin_session = {"cookie": f"{SESSION_COOKIE}={make_session('adm')}"}
        assert isinstance(access.check(Guard.MONITOR, scope(path), admin_session), UnauthorizedError)

    def test_open_and_client_guards_check_no_key(self) -> None:
        access = AccessControl(Settings(admin_api_key="adm", monitor_api_key="mon"))
        for guard in (Guard.OPEN, Guard.CLIENT):
            assert access.check(guard, scope("/anything", client="203.0.113.9"), {}) is None

    def test_the_page_guard_asks_for_the_monitor_key_too(self) -> None:
        access = AccessControl(Settings(monitor_api_key="mon"))
        assert isinstance(access.check(Guard.MONITOR_PAGE, scope("/dashboard"), {}), UnauthorizedError)
        assert access.check(Guard.MONITOR_PAGE, scope("/dashboard"), {"x-api-key": "mon"}) is None
