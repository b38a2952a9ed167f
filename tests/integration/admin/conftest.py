"""Fixtures of the operator-surface tests: a headless Chromium for the dashboard tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import Chromium, require_chromium


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    binary = require_chromium()
    with Chromium(binary) as browser:
        yield browser
