"""The dashboard page: one file, shipped as package data, self-contained, and served with a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources
from pathlib import Path

from proxy.admin.dashboard import CHECKOUT_PAGE, content_security_policy, load_page

ROOT = Path(__file__).resolve().parents[3]
TOP_LEVEL = ROOT / "dashboard.html"
PACKAGED = ROOT / "proxy" / "static" / "dashboard.html"


def test_the_packaged_copy_is_the_top_level_file() -> None:
    # dashboard.html at the top is the one to edit; proxy/static/ ships it in the wheel.
    assert TOP_LEVEL.read_bytes() == PACKAGED.read_bytes(), \
        "proxy/static/dashboard.html differs from dashboard.html: cp dashboard.html proxy/static/dashboard.html"


def test_the_loader_prefers_package_data_then_the_checkout() -> None:
    assert resources.files("proxy").joinpath("static", "dashboard.html").is_file()
    assert CHECKOUT_PAGE == TOP_LEVEL
    assert load_page() == TOP_LEVEL.read_bytes()


def test_the_package_data_is_declared() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'proxy = \[[^\]]*"static/\*"', pyproject)


def test_the_page_loads_nothing_from_elsewhere() -> None:
    html = TOP_LEVEL.read_text()
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # only the SVG namespace name, never fetched
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(?!data:)", html)
    assert "@import" not in html and "url(" not in html


def test_no_inline_handlers_or_style_attributes_so_the_csp_can_stay_strict() -> None:
    html = TOP_LEVEL.read_text()
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"\sstyle=", html)
    assert "eval(" not in html and "new Function" not in html and "innerHTML" not in html


def test_the_csp_allows_exactly_the_inline_script_and_style() -> None:
    html = load_page()
    csp = content_security_policy(html)
    text = html.decode()
    scripts = re.findall(r"<script>(.*?)</script>", text, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", text, re.DOTALL)
    assert len(scripts) == len(styles) == 1
    for body in scripts + styles:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    directives = dict(part.split(" ", 1) for part in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
