"""From exchanges and reports to stored rows: costs at the advertised prices, redacted usage, cache rates."""

from __future__ import annotations

import pytest

from proxy.core.usage import normalize_usage
from proxy.probe.catalog import Advertised
from proxy.probe.exchange import Exchange
from proxy.probe.records import cache_rate, redact_usage, result_row, verdict_row
from proxy.probe.report import ESTIMATED_NOTE, ProbeReport, render_table
from proxy.probe.report import row as table_row
from proxy.probe.verdict import Verdict

PRICES = Advertised(caching=True, input_per_million=1.0, cached_input_per_million=0.1, output_per_million=2.0)


def exchange(role: str, prompt: int, cached: int | None, *, status: int = 200) -> Exchange:
    details = {} if cached is None else {"prompt_tokens_details": {"cached_tokens": cached}}
    raw = {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1, **details}
    ex = Exchange("m", "basic", "repeats", role, "run-1", 100.0, status=status, latency=0.5, request_hash="h",
                  upstream_request_id="sim-1", host="sim-server-0", balance_usd=9.5, balance_diem=95.0)
    ex.raw_usage, ex.usage = raw, normalize_usage(raw)
    return ex


def test_redaction_keeps_numbers_only() -> None:
    raw = {"prompt_tokens": 5, "note": "secret", "details": {"cached_tokens": 0, "flag": True, "x": None},
           "list": [1, "two"]}
    assert redact_usage(raw) == {"prompt_tokens": 5, "note": "<redacted>",
                                 "details": {"cached_tokens": 0, "flag": True, "x": None}, "list": [1, "<redacted>"]}


def test_a_result_row_costs_at_the_advertised_prices() -> None:
    row = result_row(exchange("repeat", 2000, 1500), source="cycle", cycle_id="c1", advertised=PRICES)
    assert (row.prompt_tokens, row.cached_tokens, row.completion_tokens) == (2000, 1500, 1)
    assert row.cost_usd == pytest.approx((500 * 1.0 + 1500 * 0.1 + 1 * 2.0) / 1e6)
    assert row.saved_usd == pytest.approx(1500 * 0.9 / 1e6)
    assert (row.run_id, row.cycle_id, row.source, row.host, row.balance_diem) == ("run-1", "c1", "cycle",
                                                                                   "sim-server-0", 95.0)
    assert row.tokens == 2001


def test_unknown_stays_unknown() -> None:
    row = result_row(exchange("repeat", 2000, None), source="cycle", cycle_id=None, advertised=Advertised())
    assert (row.cached_tokens, row.cost_usd, row.saved_usd) == (None, None, None)
    failed = result_row(exchange("repeat", 2000, 5, status=500), source="cycle", cycle_id=None, advertised=PRICES)
    assert (failed.cached_tokens, failed.cost_usd) == (None, None)


def without_usage(status: int = 200, error: str | None = None) -> Exchange:
    """An answer that reported no usage (a stream that ignored include_usage, or one cut short)."""
    return Exchange("m", "stream", "stream", "repeat", "run-1", 100.0, stream=True, status=status, error=error,
                    request_hash="h", prompt_estimate=2100, completion_chars=2, max_tokens=16)


def test_an_answer_without_usage_is_charged_its_estimate_at_full_price() -> None:
    for ex in (without_usage(), without_usage(error="cut short")):
        row = result_row(ex, source="cycle", cycle_id="c1", advertised=PRICES)
        assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (None, None, None)  # unknown
        assert (row.estimated_tokens, row.tokens) == (2116, 2116)
        assert row.cost_usd == pytest.approx((2100 * 1.0 + 16 * 2.0) / 1e6)  # nothing taken as cached
        assert row.saved_usd is None
    refused = result_row(without_usage(status=429), source="cycle", cycle_id="c1", advertised=PRICES)
    assert (refused.estimated_tokens, refused.tokens, refused.cost_usd) == (0, 0, None)
    assert result_row(exchange("repeat", 2000, 5), source="cycle", cycle_id=None,
                      advertised=PRICES).estimated_tokens == 0


def test_a_report_counts_and_marks_its_estimates() -> None:
    exchanges = [exchange("prime", 1000, 0), without_usage()]
    verdict = Verdict("caches", None, 1.0, False, True, None)
    report = ProbeReport("m", "run-1", 90.0, 100.0, verdict, exchanges=exchanges, advertised=PRICES)
    assert (report.tokens_spent, report.tokens_estimated) == (1001 + 2116, 2116)
    data = report.as_dict(evidence=False)
    assert (data["tokens_spent"], data["tokens_estimated"]) == (3117, 2116)
    rows = [result_row(ex, source="cycle", cycle_id="c1", advertised=PRICES) for ex in exchanges]
    assert verdict_row(report, rows, cycle_id="c1", ttl=None).tokens_spent == 3117
    assert table_row(report)[-1] == "~3117"
    assert render_table([report]).endswith(f"\n{ESTIMATED_NOTE}\n")
    plain = ProbeReport("m", "run-1", 90.0, 100.0, verdict, exchanges=exchanges[:1], advertised=PRICES)
    assert table_row(plain)[-1] == "1001" and ESTIMATED_NOTE not in render_table([plain])


def test_cache_rate_is_the_mean_cached_share_of_the_repeats() -> None:
    exchanges = [exchange("prime", 1000, 0), exchange("repeat", 1000, 500), exchange("repeat", 1000, 1000),
                 exchange("repeat", 1000, None)]
    assert cache_rate(exchanges) == 0.75  # the prime and the unknown one do not count
    assert cache_rate([exchange("repeat", 1000, None)]) is None


def test_a_verdict_row_carries_the_ttl_measured_across_cycles() -> None:
    exchanges = [exchange("prime", 1000, 0), exchange("repeat", 1000, 1000)]
    verdict = Verdict("caches", None, 1.0, False, True, None)
    report = ProbeReport("m", "run-1", 90.0, 100.0, verdict, exchanges=exchanges, advertised=PRICES)
    rows = [result_row(ex, source="cycle", cycle_id="c1", advertised=PRICES) for ex in exchanges]
    row = verdict_row(report, rows, cycle_id="c1", ttl={"ttl_seconds": [80.0, 320.0], "refresh_on_hit": True})
    assert (row.verdict, row.hit_ratio, row.cache_rate, row.ttl_seconds) == ("caches", 1.0, 1.0, [80.0, 320.0])
    assert row.tokens_spent == 2002
    assert row.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in rows))
    assert row.report["refresh_on_hit"] is True and row.report["ttl_seconds"] == [80.0, 320.0]
    assert "report" not in row.as_dict() and row.as_dict(report=True)["report"]["model"] == "m"
