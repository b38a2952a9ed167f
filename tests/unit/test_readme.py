"""The README documents every setting, and the settings' two lists of defaults agree."""

from __future__ import annotations

import dataclasses
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
