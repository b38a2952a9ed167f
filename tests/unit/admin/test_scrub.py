"""proxy.admin.routes.scrub: credentials inside URLs never reach /admin/config."""

from __future__ import annotations

from proxy.admin.routes import scrub


def test_passwords_and_secret_query_parameters_are_hidden() -> None:
    out = scrub({"a": "redis://:hunter2@cache:6379/0", "b": ["https://u:pw@host/v1?api_key=abc&region=eu"],
                 "c": "https://host/v1", "d": 3, "e": None, "f": "plain text"})
    assert "hunter2" not in str(out) and "pw@" not in str(out) and "abc" not in str(out)
    assert out["a"] == "redis://:<redacted>@cache:6379/0"
    assert out["b"][0].startswith("https://u:<redacted>@host/v1?api_key=<redacted>")
    assert "region=eu" in out["b"][0]
    assert out["c"] == "https://host/v1" and out["d"] == 3 and out["e"] is None and out["f"] == "plain text"
