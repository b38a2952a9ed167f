"""proxy.component: what a dashboard panel may be, checked when it is declared."""

from __future__ import annotations

import pytest

from proxy.component import PANEL_KINDS, Panel


def test_a_panel_names_its_kind_source_title_and_order() -> None:
    panel = Panel("probe", "Prompt-cache probe", "link", "/probe", order=95, note="which providers cache prompts")
    assert (panel.id, panel.title, panel.kind, panel.source, panel.order, panel.note) == (
        "probe", "Prompt-cache probe", "link", "/probe", 95, "which providers cache prompts")
    assert Panel("totals", "Totals", "totals", "/metrics").order == 100  # the default: after the shipped panels
    assert Panel("totals", "Totals", "totals", "/metrics").note == ""


def test_the_kinds_are_the_shipped_panels_and_a_generic_link() -> None:
    assert PANEL_KINDS == ("totals", "outcomes", "timeline", "tokens", "latency", "streaming", "models", "pricing",
                           "exports", "recent", "admin", "semantic", "levels", "warnings", "link")


@pytest.mark.parametrize(("fields", "message"), [
    (("Probe", "Probe", "link", "/probe"), "panel id 'Probe': lower-case letters, digits and '-'"),
    (("", "Probe", "link", "/probe"), "panel id ''"),
    (("9lives", "Probe", "link", "/probe"), "panel id '9lives'"),
    (("a b", "Probe", "link", "/probe"), "panel id 'a b'"),
    (("x" * 41, "Probe", "link", "/probe"), "panel id 'xxxx"),
    (("probe", "Probe", "pie", "/probe"), "panel 'probe': kind 'pie' is not one of totals, outcomes,"),
    (("probe", "Probe", "link", "probe"), "panel 'probe': source 'probe' must be a path on this origin"),
    (("probe", "Probe", "link", "https://example.com/probe"), "source 'https://example.com/probe' must be a path"),
    (("probe", "Probe", "link", "//example.com/probe"), "source '//example.com/probe' must be a path"),
    (("probe", "  ", "link", "/probe"), "panel 'probe' needs a title"),
])
def test_a_bad_panel_is_refused_when_it_is_declared(fields: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Panel(*fields)
    assert message in str(caught.value)
