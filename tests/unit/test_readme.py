"""The README documents every setting, and the settings' two lists of defaults agree."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from proxy.settings import SPECS, Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.env)
def test_every_setting_is_in_the_readme(spec: object) -> None:
    assert f"| `{spec.env}` |" in README  # type: ignore[attr-defined]


def test_spec_defaults_match_the_dataclass() -> None:
    fields = {field.name: field.default for field in dataclasses.fields(Settings)}
    assert set(fields) == {spec.attr for spec in SPECS}
    assert {spec.attr: spec.default for spec in SPECS} == fields


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_within_the_readme_names_a_heading() -> None:
    anchors: set[str] = set()
    fenced = False
    for line in README.splitlines():
        fenced ^= line.startswith("```")  # a shell comment in a code block is no heading
        if not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            slug, seen = _slug(match.group(1)), 0
            while (slug if not seen else f"{slug}-{seen}") in anchors:  # a repeated heading gets -1, -2, ...
                seen += 1
            anchors.add(slug if not seen else f"{slug}-{seen}")
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= anchors, sorted(links - anchors)
