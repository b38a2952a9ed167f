"""The monitor's tick: several per lock period, so a leader renews its lock well before it expires."""

from __future__ import annotations

import pytest

from proxy.probe.component import tick_seconds


@pytest.mark.parametrize(("lock", "tick"), [(60.0, 5.0), (30.0, 5.0), (6.0, 2.0), (1.0, 1 / 3)])
def test_tick_is_at_most_a_third_of_the_lock(lock: float, tick: float) -> None:
    assert tick_seconds(lock) == pytest.approx(tick)
    assert tick_seconds(lock) <= lock / 3
