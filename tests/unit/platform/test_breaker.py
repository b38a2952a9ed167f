"""The per-node breaker on a fake clock: closed, open for the cool-down, one trial, closed again."""

from __future__ import annotations

from proxy.platform.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_skips_the_node_for_the_cool_down_then_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = Breaker(1.0, clock=clock)
    assert breaker.allow("a") and breaker.allow("b")
    breaker.failed("a", "no answer within 0.25s")
    assert not breaker.allow("a") and breaker.allow("b")  # per node
    assert breaker.open_nodes() == ["a"] and breaker.reason("a") == "no answer within 0.25s"
    clock.now += 1.0
    assert breaker.allow("a")  # the trial
    assert not breaker.allow("a")  # the others wait for it: armed for another cool-down
    assert breaker.skipped == 2
    breaker.succeeded("a")
    assert breaker.allow("a") and breaker.open_nodes() == []


def test_a_failed_trial_opens_it_again() -> None:
    clock = Clock()
    breaker = Breaker(0.5, clock=clock)
    breaker.failed("a")
    clock.now += 0.6
    assert breaker.allow("a")
    breaker.failed("a")
    clock.now += 0.4
    assert not breaker.allow("a") and breaker.is_open("a")
    clock.now += 0.2
    assert breaker.allow("a")


def test_a_cool_down_of_zero_never_skips() -> None:
    breaker = Breaker(0.0, clock=Clock())
    breaker.failed("a")
    assert breaker.allow("a") and breaker.allow("a")
