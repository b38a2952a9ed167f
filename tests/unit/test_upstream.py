"""proxy.upstream: the URL aiohttp is given is the one that was checked (issue 10.9), and errors name the
upstream without its credentials (issue 10.14)."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from proxy.errors import SettingsError, UpstreamTimeoutError
from proxy.upstream import HttpUpstream, _mapped


@pytest.mark.parametrize(("base", "path", "query", "expected"), [
    ("https://api.example/v1", "/models", "", "https://api.example/v1/models"),
    ("https://api.example/v1/", "/models", "limit=2", "https://api.example/v1/models?limit=2"),
    ("https://api.example/v1", "/models/openai%2Fgpt-4o", "", "https://api.example/v1/models/openai%2Fgpt-4o"),
    # nothing is resolved or re-quoted: what paths.py checked is what goes
    ("https://api.example/v1", "/a%2e%2e/b", "", "https://api.example/v1/a%2e%2e/b"),
    ("https://api.example/v1", "/x", "y=%2F&z=a%20b", "https://api.example/v1/x?y=%2F&z=a%20b"),
    # only what a query cannot hold is escaped
    ("https://api.example/v1", "/x", "q=a b&r=caf\u00e9#f", "https://api.example/v1/x?q=a%20b&r=caf%C3%A9%23f"),
    ("https://res.example/openai?api-version=2024-06-01", "/chat/completions", "",
     "https://res.example/openai/chat/completions?api-version=2024-06-01"),
    ("https://res.example/openai?api-version=2024-06-01", "/models", "a=1",
     "https://res.example/openai/models?api-version=2024-06-01&a=1"),
    ("http://u:p%40w@127.0.0.1:9/v1", "/models", "", "http://u:p%40w@127.0.0.1:9/v1/models"),
])
def test_url_for(base: str, path: str, query: str, expected: str) -> None:
    url = HttpUpstream(base, timeout=1).url_for(path, query)
    assert str(url) == expected
    assert url.raw_path_qs == expected.split("127.0.0.1:9", 1)[-1].split(".example", 1)[-1]


def test_errors_name_the_upstream_without_its_credentials() -> None:
    base = "https://alice:hunter2@api.example/v1?key=k-secret"
    unreachable = _mapped(OSError("cannot reach https://alice:hunter2@api.example/v1/models?key=k-secret"), base)
    timeout = _mapped(TimeoutError(), base)
    for error in (unreachable, timeout):
        assert "hunter2" not in error.message and "k-secret" not in error.message
        assert "https://alice:<redacted>@api.example/v1?key=<redacted>" in error.message
    assert unreachable.message.endswith("cannot reach https://alice:<redacted>@api.example/v1/models?key=<redacted>")


def test_the_ca_bundle_is_read_at_start_up_once_and_a_bad_one_stops_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # read on the first request it held the event loop 24 ms; read when the upstream is built it costs no request
    first = HttpUpstream("https://api.example/v1", timeout=5)
    second = HttpUpstream("https://api.example/v2", timeout=5)
    assert isinstance(first._ssl, ssl.SSLContext) and first._ssl is second._ssl
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError, match=r"SSL_CERT_FILE: cannot read the CA bundle .*missing\.pem"):
        HttpUpstream("https://api.example/v1", timeout=5)


def test_a_timeout_says_whether_the_request_had_been_sent() -> None:
    connecting = _mapped(aiohttp.ConnectionTimeoutError("connect"), "https://api.example/v1")
    reading = _mapped(aiohttp.SocketTimeoutError("read"), "https://api.example/v1")
    assert isinstance(connecting, UpstreamTimeoutError) and not connecting.after_sending
    assert isinstance(reading, UpstreamTimeoutError) and reading.after_sending
