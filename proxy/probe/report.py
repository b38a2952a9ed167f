"""A model's probe report: the verdict, the headline figures, every test's figures and evidence; as JSON
(``cachegate probe --json``) or as one row of a table. Tokens charged as estimates, for answers without usage
(:mod:`proxy.probe.charge`), are counted in ``tokens_spent`` and shown as ``tokens_estimated`` (``~`` in a
table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.probe.catalog import Advertised
from proxy.probe.exchange import CheckResult, Exchange
from proxy.probe.prompts import TokenGauge
from proxy.probe.session import Recipe
from proxy.probe.verdict import Verdict


@dataclass
class ProbeReport:
    model: str
    correlation_id: str
    started_at: float
    finished_at: float
    verdict: Verdict
    tests: dict[str, CheckResult] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    rejected_params: list[str] = field(default_factory=list)
    advertised: Advertised = field(default_factory=Advertised)
    error: str | None = None
    recipe: Recipe = field(default_factory=Recipe)  # what the tests learnt: later TTL steps reuse it
    gauge: TokenGauge = field(default_factory=TokenGauge)

    def figure(self, test: str, name: str) -> Any:
        result = self.tests.get(test)
        return None if result is None or result.skipped else result.figures.get(name)

    @property
    def tokens_spent(self) -> int:
        """Estimates for answers without usage included (:attr:`tokens_estimated` of them)."""
        return sum(ex.tokens for ex in self.exchanges)

    @property
    def tokens_estimated(self) -> int:
        return sum(ex.charge.estimated_tokens for ex in self.exchanges)

    @property
    def balance(self) -> dict[str, float | None]:
        """Venice's balances before the first and after the last answer that carried them."""
        usd = [ex.balance_usd for ex in self.exchanges if ex.balance_usd is not None]
        diem = [ex.balance_diem for ex in self.exchanges if ex.balance_diem is not None]
        return {"usd_first": usd[0] if usd else None, "usd_last": usd[-1] if usd else None,
                "diem_first": diem[0] if diem else None, "diem_last": diem[-1] if diem else None}

    def as_dict(self, *, evidence: bool = True) -> dict[str, Any]:
        v = self.verdict
        return {
            "model": self.model, "verdict": v.verdict, "hint": v.hint, "hit_ratio": v.hit_ratio,
            "min_prefix_tokens": self.figure("sizes", "min_prefix_tokens"),
            "step_tokens": self.figure("sizes", "step_tokens"),
            "ttl_seconds": self.figure("ttl", "ttl_seconds"),
            "refresh_on_hit": self.figure("ttl", "refresh_on_hit"),
            "unit_semantics": self.figure("partial", "unit_semantics"),
            "stream_parity": self.figure("stream", "parity"),
            "speedup": self.figure("latency", "speedup"),
            "contaminated": v.contaminated, "advertised_caching": v.advertised_caching, "drift": v.drift,
            "rejected_params": self.rejected_params, "tokens_spent": self.tokens_spent,
            "tokens_estimated": self.tokens_estimated,
            "saving_per_1m_cached_usd": self.advertised.saving_per_million, "pricing": self.advertised.as_dict(),
            "notes": list(v.notes), "error": self.error, "correlation_id": self.correlation_id,
            "started_at": self.started_at, "finished_at": self.finished_at, "balance": self.balance,
            "tests": {name: (result.as_dict() if evidence else {"figures": result.figures,
                                                                  "skipped": result.skipped})
                      for name, result in self.tests.items()},
        }


ESTIMATED_NOTE = "~: tokens include estimates for answers that reported no usage"
COLUMNS = ("model", "verdict", "hit ratio", "min prefix", "step", "TTL (s)", "speed-up", "tokens")


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{suffix}"
    return f"{value}{suffix}"


def row(report: ProbeReport) -> tuple[str, ...]:
    data = report.as_dict(evidence=False)
    verdict = data["verdict"] + (f" ({data['hint']})" if data["hint"] else "")
    if data["drift"]:
        verdict += " [drift]"
    if data["contaminated"]:
        verdict += " [contaminated]"
    ttl = data["ttl_seconds"]
    ttl_text = "-" if not ttl else f"{_fmt(ttl[0])}-{_fmt(ttl[1]) if ttl[1] is not None else '>'}"
    return (report.model, verdict, _fmt(data["hit_ratio"]), _fmt(data["min_prefix_tokens"]),
            _fmt(data["step_tokens"]), ttl_text, _fmt(data["speedup"], "x"),
            ("~" if data["tokens_estimated"] else "") + str(data["tokens_spent"]))


def render_table(reports: list[ProbeReport]) -> str:
    rows = [COLUMNS, *(row(r) for r in reports)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    errors = [f"{r.model}: {r.error}" for r in reports if r.error]
    if any(r.tokens_estimated for r in reports):
        errors.append(ESTIMATED_NOTE)
    return "\n".join(lines + errors) + "\n"
