"""Who may use the operator's routes.

Each route declares its :class:`~proxy.component.Guard`; :mod:`proxy.access.guards` applies it.

* ``/admin/*`` (``Guard.ADMIN``): the admin key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``,
  always. It is ``ADMIN_API_KEY``, or when that is unset a key generated on first start into
  ``DATA_DIR/admin_api_key`` (mode 0600; :mod:`proxy.access.admin_key`). Being on loopback is no longer
  enough: a reverse proxy on the same host that adds no ``X-Forwarded-For`` (nginx and HAProxy add none by
  default) made every client a loopback one, and DNS rebinding let any web page pass an Origin-vs-Host
  check. A cross-site ``Origin`` is refused too — only this server's own origin, whatever
  ``ALLOWED_ORIGINS`` says (CORS is never applied to ``/admin``).
* ``/metrics*`` and ``/dashboard*`` (``Guard.MONITOR``): ``MONITOR_API_KEY`` (the admin key works too) in
  the same headers, or as the password of ``Authorization: Basic`` (any user name: what Prometheus's
  ``basic_auth`` sends), or the dashboard's session cookie, which holds an expiring HMAC made with the key,
  never the key itself. Without ``MONITOR_API_KEY`` they are open. ``/health*`` is always open.

Keys are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.types import Scope

from proxy.component import Guard
from proxy.errors import CachegateError, ForbiddenError, UnauthorizedError
from proxy.settings import Settings

SESSION_COOKIE = "cachegate_monitor"
SESSION_SECONDS = 12 * 3600
_SESSION_CONTEXT = b"cachegate-dashboard-session-v1:"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a caller presents: ``X-API-Key`` or ``Authorization: Bearer``."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def basic_password(headers: Mapping[str, str]) -> str | None:
    """The password of ``Authorization: Basic base64(user:password)`` (a scrape's ``basic_auth``)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def key_matches(candidate: str | None, expected: str | None) -> bool:
    """Constant-time comparison (over digests, so the length of the key leaks nothing either)."""
    if not candidate or not expected:
        return False
    return hmac.compare_digest(hashlib.sha256(candidate.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


# -- the dashboard's session cookie --------------------------------------------------------------------


def _sign(key: str, expires: int) -> str:
    return hmac.new(key.encode(), _SESSION_CONTEXT + str(expires).encode(), hashlib.sha256).hexdigest()


def make_session(key: str, *, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + SESSION_SECONDS)
    return f"{expires}.{_sign(key, expires)}"


def session_valid(value: str | None, key: str | None, *, now: float | None = None) -> bool:
    if not value or not key:
        return False
    expires_text, _, signature = value.partition(".")
    if not expires_text.isdigit() or int(expires_text) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature.encode(), _sign(key, int(expires_text)).encode())


def cookie_value(headers: Mapping[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        cookie_name, _, value = part.strip().partition("=")
        if cookie_name == name:
            return value
    return None


# -- the guards ---------------------------------------------------------------------------------------


def same_origin(origin: str, headers: Mapping[str, str]) -> bool:
    """``Origin`` is this server itself (ALLOWED_ORIGINS are for the proxied API, never for admin routes)."""
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


class AccessControl:
    """Decides, per request, whether a route with a given :class:`~proxy.component.Guard` may be used
    (``None``) or which error answers instead."""

    def __init__(self, settings: Settings) -> None:
        #: ADMIN_API_KEY, or the generated key once the access component has started (None before: refused)
        self.admin_key = settings.admin_api_key
        self.admin_key_source = "ADMIN_API_KEY" if settings.admin_api_key is not None else None
        self.monitor_key = settings.monitor_api_key

    def monitor_allowed(self, headers: Mapping[str, str]) -> bool:
        if self.monitor_key is None:
            return True
        key = presented_key(headers) or basic_password(headers)
        if key_matches(key, self.monitor_key) or key_matches(key, self.admin_key):
            return True
        return session_valid(cookie_value(headers, SESSION_COOKIE), self.monitor_key)

    def check_admin(self, scope: Scope, headers: Mapping[str, str]) -> CachegateError | None:
        origin = headers.get("origin")
        if origin and not same_origin(origin, headers):
            return ForbiddenError("Admin routes refuse cross-site requests.", code="cross_site_request")
        if key_matches(presented_key(headers), self.admin_key):
            return None
        return UnauthorizedError("Admin routes need the admin key: 'Authorization: Bearer <key>' or "
                                 "'X-API-Key: <key>' (ADMIN_API_KEY, or the key cachegate wrote to "
                                 "DATA_DIR/admin_api_key).")

    def check(self, guard: Guard, scope: Scope, headers: Mapping[str, str]) -> CachegateError | None:
        if guard is Guard.ADMIN:
            return self.check_admin(scope, headers)
        if guard in (Guard.MONITOR, Guard.MONITOR_PAGE) and not self.monitor_allowed(headers):
            return UnauthorizedError("Monitoring routes need the monitor key: 'Authorization: Bearer "
                                     "<MONITOR_API_KEY>', 'X-API-Key: <MONITOR_API_KEY>', or basic auth with it as "
                                     "the password.")
        return None
