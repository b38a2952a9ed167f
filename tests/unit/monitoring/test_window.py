"""Sliding-window percentiles."""

from __future__ import annotations

from proxy.monitoring.window import Window, percentile, summarize


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7


def test_summarize_scales_and_rounds() -> None:
    assert summarize([0.001, 0.003, 0.002], scale=1000) == {
        "count": 3, "p50": 2.0, "p90": 3.0, "p99": 3.0, "avg": 2.0, "min": 1.0, "max": 3.0}
    assert summarize([])["p50"] is None


def test_samples_older_than_the_window_fall_out() -> None:
    clock = Clock()
    window = Window(10, clock=clock)
    window.add(1.0, "a")
    clock.now += 6
    window.add(2.0, "b")
    assert [s[1:] for s in window.samples()] == [(1.0, "a"), (2.0, "b")]
    clock.now += 5
    assert [s[1:] for s in window.samples()] == [(2.0, "b")]
    clock.now += 10
    assert window.samples() == []


def test_the_window_is_bounded() -> None:
    window = Window(60, maxlen=3, clock=Clock())
    for value in range(5):
        window.add(float(value))
    assert [s[1] for s in window.samples()] == [2.0, 3.0, 4.0]


def test_batches_wrap_around_the_ring() -> None:
    clock = Clock()
    window = Window(60, maxlen=4, clock=clock)
    code = window.code(("a",))
    window.add_many([clock.now] * 3, [1.0, 2.0, 3.0], [code] * 3)
    window.add_many([clock.now] * 3, [4.0, 5.0, 6.0], [code] * 3)
    assert [s[1:] for s in window.samples()] == [(3.0, "a"), (4.0, "a"), (5.0, "a"), (6.0, "a")]
    window.add_many([clock.now] * 9, [float(v) for v in range(9)], [code] * 9)
    assert [s[1] for s in window.samples()] == [5.0, 6.0, 7.0, 8.0]
    assert len(window) == 4
