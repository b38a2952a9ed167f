"""proxy.redaction: passwords and secret query parameters hidden in URLs, in values and inside text."""

from __future__ import annotations

import pytest

from proxy.redaction import redact_url, scrub


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://:pw@localhost:6379/0", "redis://:<redacted>@localhost:6379/0"),
    ("rediss://default:s3cret@cache.example.com:6380", "rediss://default:<redacted>@cache.example.com:6380"),
    ("redis://user:pw@host/2", "redis://user:<redacted>@host/2"),
    ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("redis://user@host:6379", "redis://user@host:6379"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_ipv6() -> None:
    assert redact_url("redis://:pw@[::1]:6379/0") == "redis://:<redacted>@[::1]:6379/0"


def test_scrub_hides_passwords_and_secret_query_parameters() -> None:
    out = scrub({"a": "redis://:hunter2@cache:6379/0", "b": ["https://u:pw@host/v1?api_key=abc&region=eu"],
                 "c": "https://host/v1", "d": 3, "e": None, "f": "plain text"})
    assert "hunter2" not in str(out) and "pw@" not in str(out) and "abc" not in str(out)
    assert out["a"] == "redis://:<redacted>@cache:6379/0"
    assert out["b"][0].startswith("https://u:<redacted>@host/v1?api_key=<redacted>")
    assert "region=eu" in out["b"][0]
    assert out["c"] == "https://host/v1" and out["d"] == 3 and out["e"] is None and out["f"] == "plain text"


@pytest.mark.parametrize(("text", "expected"), [
    ("The upstream at https://u:pw@host/v1?key=abc could not be reached: OSError",
     "The upstream at https://u:<redacted>@host/v1?key=<redacted> could not be reached: OSError"),
    ("embedding: http://a:b@127.0.0.1:9/embed unreachable: ConnectError('x')",
     "embedding: http://a:<redacted>@127.0.0.1:9/embed unreachable: ConnectError('x')"),
    ("two: redis://:p1@r:1/0 and 'https://h/x?token=t&a=1'", "two: redis://:<redacted>@r:1/0 and "
     "'https://h/x?token=<redacted>&a=1'"),
    ("no url here: host:443", "no url here: host:443"),
    ("bad http://[::1/x", "bad <redacted>"),
])
def test_scrub_finds_urls_inside_text(text: str, expected: str) -> None:
    assert scrub(text) == expected
