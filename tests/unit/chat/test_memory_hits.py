"""Which key prefixes let exact hits be answered before ASGI: ``x-cache-key`` is sent there without uvicorn's check."""

from __future__ import annotations

import pytest

from proxy.chat.memory_hits import can_answer_early


@pytest.mark.parametrize(("prefix", "early"), [("cachegate:", True), ("team a/b:", True), ("tab\tok:", True),
                                               ("line\nbreak:", False), ("bell\x07:", False), ("café:", False)])
def test_only_a_prefix_that_can_go_in_a_header_as_it_is(prefix: str, early: bool) -> None:
    assert can_answer_early(prefix) is early
