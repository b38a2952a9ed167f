"""The dashboard page: one file (the package data links to it, a wheel ships it), self-contained, and served
with a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

from proxy.admin.dashboard import content_security_policy, load_page
from proxy.component import PANEL_KINDS

ROOT = Path(__file__).resolve().parents[3]
TOP_LEVEL = ROOT / "dashboard.html"
PACKAGED = ROOT / "proxy" / "static" / "dashboard.html"


def test_the_packaged_page_is_the_top_level_file() -> None:
    # one file: the package data is a relative link to the top-level page, which is the one to edit
    assert PACKAGED.is_symlink() and os.readlink(PACKAGED) == "../../dashboard.html"
    assert PACKAGED.resolve() == TOP_LEVEL.resolve()
    packaged = resources.files("proxy").joinpath("static", "dashboard.html")
    assert packaged.is_file()
    assert packaged.read_bytes() == TOP_LEVEL.read_bytes()
    assert load_page() == TOP_LEVEL.read_bytes()


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY line of the Dockerfile."""
    copies = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(word.startswith("--") for word in words):
            copies.append((words[1:-1], words[-1]))
    return copies


def test_a_wheel_built_from_what_the_dockerfile_copies_ships_the_whole_page(tmp_path: Path) -> None:
    # the tree as the image has it (COPY keeps the symlink a symlink), built the way `pip install .` builds
    # it, offline: the wheel must hold the page itself, not a link to a file outside the package
    tree = tmp_path / "app"
    tree.mkdir()
    for sources, destination in dockerfile_copies():
        for source in sources:
            target = tree / destination / source if destination.endswith("/") else tree / destination
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(ROOT / source, target)
    assert (tree / "proxy" / "static" / "dashboard.html").is_symlink()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(tree), "-w", str(tmp_path / "wheels"),
                            "--no-deps", "--no-build-isolation", "--no-index", "-q"],
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("cachegate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo("proxy/static/dashboard.html")
        assert stat.S_ISLNK(info.external_attr >> 16) is False
        assert archive.read(info) == TOP_LEVEL.read_bytes()


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


def test_the_page_draws_exactly_the_panel_kinds_the_contract_names() -> None:
    script = re.search(r"<script>(.*?)</script>", TOP_LEVEL.read_text(), re.DOTALL).group(1)  # type: ignore[union-attr]
    registry = re.search(r"\n  var KINDS = \{\n(.*?)\n  \};", script, re.DOTALL)
    assert registry is not None, "the page's KINDS registry is missing"
    kinds = re.findall(r"^    ([a-z]+): \{", registry.group(1), re.MULTILINE)
    assert len(kinds) == len(registry.group(1).splitlines())  # one kind a line, every line read
    assert tuple(kinds) == PANEL_KINDS
