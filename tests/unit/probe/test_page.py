"""The ``/probe`` page as shipped: package data, one script and one style allowed by hash, nothing inline
that the policy would block, and no address outside this origin."""

from __future__ import annotations

import base64
import hashlib
import re

from proxy.admin.dashboard import load_page as load
from proxy.probe.page import PAGE, ProbePage


def load_page() -> bytes:
    return load(PAGE)


def test_the_page_is_package_data_with_a_policy_of_its_own_hashes() -> None:
    html = load_page().decode()
    assert html.startswith("<!DOCTYPE html>")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(scripts) == 1 and len(styles) == 1
    response = ProbePage().html.response()
    csp = response.headers["content-security-policy"]
    for kind, body in (("script", scripts[0]), ("style", styles[0])):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{kind}-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert (response.headers["x-frame-options"], response.headers["cache-control"]) == ("DENY", "no-store")


def test_nothing_inline_that_the_policy_blocks_and_nothing_from_elsewhere() -> None:
    html = load_page().decode()
    markup = re.sub(r"<(script|style)>.*?</\1>", "", html, flags=re.DOTALL)
    assert not re.search(r"\son[a-z]+\s*=", markup)  # no inline handlers
    assert not re.search(r"\sstyle\s*=", markup)  # no style attributes
    assert "javascript:" not in html
    assert not re.search(r"(src|href)\s*=\s*\"(https?:)?//", html)  # no CDN, no other origin
    assert ".innerHTML" not in html  # upstream text (model ids, errors) is set as text only
