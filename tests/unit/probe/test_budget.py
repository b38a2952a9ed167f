"""Budgets and the balance floor: exact refusals, stops and what is left."""

from __future__ import annotations

import pytest

from proxy.probe.budget import TEST_ESTIMATES, Estimate, Limits, day_start, estimate_tokens
from proxy.probe.store import Balance, Spend
from proxy.setting_values import parse_balance_floor
from proxy.settings import Settings, SettingsError


def test_a_day_is_a_utc_day() -> None:
    assert day_start(86400 * 3 + 5) == 86400 * 3
    assert day_start(86400 * 3) == 86400 * 3


def test_estimates_come_from_the_last_run_else_the_table() -> None:
    assert estimate_tokens(("basic", "sizes"), 1234) == 1234
    assert estimate_tokens(("basic", "sizes"), None) == TEST_ESTIMATES["basic"] + TEST_ESTIMATES["sizes"]


def test_the_token_budget_refuses_a_cycle_that_would_exceed_it() -> None:
    limits = Limits(daily_tokens=20_000)
    assert limits.refusal(Spend(tokens=10_000), Estimate(10_000, None), None) is None  # exactly fits
    assert limits.refusal(Spend(tokens=10_000), Estimate(10_001, None), None) == (
        "the cycle would spend about 10,001 tokens, but only 10,000 of today's PROBE_DAILY_TOKEN_BUDGET (20,000) "
        "are left")
    assert limits.stop(Spend(tokens=19_999), None) is None
    assert limits.stop(Spend(tokens=20_000), None) == "today's PROBE_DAILY_TOKEN_BUDGET (20,000 tokens) is used up"


def test_the_usd_budget() -> None:
    limits = Limits(daily_usd=1.0)
    assert limits.refusal(Spend(cost_usd=0.75), Estimate(0, 0.5), None) == (
        "the cycle would spend about $0.5, but only $0.25 of today's PROBE_DAILY_USD_BUDGET ($1) are left")
    assert limits.refusal(Spend(cost_usd=0.75), Estimate(0, None), None) is None  # no price known: not refused
    assert limits.stop(Spend(cost_usd=1.0), None) == "today's PROBE_DAILY_USD_BUDGET ($1) is used up"


def test_the_floor_reads_diem_where_reported_else_usd() -> None:
    both = Balance(usd=99.5, diem=4.0, at=0.0)
    usd_only = Balance(usd=4.0, diem=None, at=0.0)
    floor = Limits(floor=(5.0, None))
    assert floor.floor_breach(both) == "the DIEM balance 4 is below PROBE_BALANCE_FLOOR (5 DIEM)"
    assert floor.floor_breach(usd_only) == "the USD balance 4 is below PROBE_BALANCE_FLOOR (5 USD)"
    assert Limits(floor=(5.0, "usd")).floor_breach(both) is None
    assert floor.floor_breach(None) is None  # nothing reported yet: the first answers will say
    assert floor.refusal(Spend(), Estimate(1, None), both) == floor.floor_breach(both)
    assert floor.stop(Spend(), both) == floor.floor_breach(both)


def test_what_is_left() -> None:
    assert Limits(daily_tokens=100).left(Spend(tokens=30, cost_usd=0.5, estimated_tokens=12)) == {
        "tokens": {"daily": 100, "spent_today": 30, "left": 70, "estimated_today": 12},
        "usd": {"daily": None, "spent_today": 0.5, "left": None}}


@pytest.mark.parametrize(("raw", "parsed"), [("5", (5.0, None)), ("5diem", (5.0, "diem")), ("2.5 USD", (2.5, "usd")),
                                             ("0", (0.0, None))])
def test_floor_setting(raw: str, parsed: tuple[float, str | None]) -> None:
    assert parse_balance_floor(raw) == parsed
    assert Settings.from_env({"PROBE_BALANCE_FLOOR": raw}).probe_balance_floor == parsed


@pytest.mark.parametrize("raw", ["five", "-1", "5eur", "usd"])
def test_bad_floor_stops_start_up(raw: str) -> None:
    with pytest.raises(SettingsError, match="PROBE_BALANCE_FLOOR: expected an amount such as 5, 5diem or 5usd"):
        Settings.from_env({"PROBE_BALANCE_FLOOR": raw})
