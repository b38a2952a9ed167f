"""What the probe may spend: daily budgets (tokens, US dollars) and a floor under the upstream's balance. Pure.

A day is a UTC day. A cycle is skipped before its first request when its estimate (each model's cost on
its last run, or :data:`TEST_ESTIMATES` for a model never probed) would take the day's spend past a
budget, or when the last balance the upstream reported is below the floor; a running cycle stops before
its next model once a budget is used up or the balance has dropped below the floor. The balance comes
from the headers every Venice answer carries (``x-venice-balance-diem`` / ``x-venice-balance-usd``): no
extra request is made. A floor without a unit applies to DIEM where the upstream reports it, else USD.

The spend is what the upstream reported, or for an answer without usage an estimate that errs high
(:mod:`proxy.probe.charge`), so a budget stops the probe early rather than late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from proxy.probe.store import Balance, Spend

DAY = 86400.0
#: tokens a test costs, roughly, for a model that caches (the simulator's accounting, bench/probe_cost.py);
#: the estimate for a model until its first run says what it really costs
TEST_ESTIMATES = {"basic": 8_500, "hints": 45_000, "sizes": 15_000, "persistence": 13_000, "partial": 4_000,
                  "stream": 4_000, "latency": 12_000, "ttl": 3_000}


def day_start(ts: float) -> float:
    return ts - ts % DAY


def estimate_tokens(tests: Sequence[str], last_run_tokens: int | None) -> int:
    if last_run_tokens:
        return last_run_tokens
    return sum(TEST_ESTIMATES.get(test, 0) for test in tests)


@dataclass(frozen=True)
class Estimate:
    tokens: int
    usd: float | None  # None: no price is known for some model


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0")


@dataclass(frozen=True)
class Limits:
    daily_tokens: int | None = None
    daily_usd: float | None = None
    floor: tuple[float, str | None] | None = None

    def floor_breach(self, balance: Balance | None) -> str | None:
        """Why the balance is too low to probe, or ``None`` (also when no balance is known yet)."""
        if self.floor is None or balance is None:
            return None
        amount, unit = self.floor
        if unit is None:
            unit = "diem" if balance.diem is not None else "usd"
        value = balance.diem if unit == "diem" else balance.usd
        if value is None or value >= amount:
            return None
        return f"the {unit.upper()} balance {_n(value)} is below PROBE_BALANCE_FLOOR ({_n(amount)} {unit.upper()})"

    def refusal(self, spent: Spend, estimate: Estimate, balance: Balance | None) -> str | None:
        """Why a cycle must not start, or ``None``."""
        if self.daily_tokens is not None and spent.tokens + estimate.tokens > self.daily_tokens:
            left: float = max(0, self.daily_tokens - spent.tokens)
            return (f"the cycle would spend about {_n(estimate.tokens)} tokens, but only {_n(left)} of today's "
                    f"PROBE_DAILY_TOKEN_BUDGET ({_n(self.daily_tokens)}) are left")
        if self.daily_usd is not None and estimate.usd is not None and spent.cost_usd + estimate.usd > self.daily_usd:
            left = max(0.0, self.daily_usd - spent.cost_usd)
            return (f"the cycle would spend about ${_n(round(estimate.usd, 4))}, but only ${_n(round(left, 4))} of "
                    f"today's PROBE_DAILY_USD_BUDGET (${_n(self.daily_usd)}) are left")
        return self.floor_breach(balance)

    def stop(self, spent: Spend, balance: Balance | None) -> str | None:
        """Why a running cycle must not start another model, or ``None``."""
        if self.daily_tokens is not None and spent.tokens >= self.daily_tokens:
            return f"today's PROBE_DAILY_TOKEN_BUDGET ({_n(self.daily_tokens)} tokens) is used up"
        if self.daily_usd is not None and spent.cost_usd >= self.daily_usd:
            return f"today's PROBE_DAILY_USD_BUDGET (${_n(self.daily_usd)}) is used up"
        return self.floor_breach(balance)

    def left(self, spent: Spend) -> dict[str, Any]:
        """The budgets with today's spend and what is left (``None``: no budget); ``estimated_today``: the
        tokens of today's spend charged as estimates, for answers without usage."""
        def one(budget: float | None, used: float) -> dict[str, Any]:
            return {"daily": budget, "spent_today": used,
                    "left": None if budget is None else max(0, round(budget - used, 8))}

        return {"tokens": {**one(self.daily_tokens, spent.tokens), "estimated_today": spent.estimated_tokens},
                "usd": one(self.daily_usd, spent.cost_usd)}
