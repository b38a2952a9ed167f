"""The probe monitor in a real proxy, against the simulator's fake clock: scheduled cycles record every
request and a verdict per model, the TTL search is stepped across cycles, retention deletes old rows, and
the budgets and the balance floor stop cycles, saying so."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.probe.conftest import StartMonitor
from tests.integration.probe.helpers import advance, api, cycle_done, scheduler, truth, wait_for
from tests.support.cache_profiles import PROFILES
from tests.support.proxy import admin_headers
from tests.support.servers import SimulatorServer

MODELS = ("sim-openai", "sim-llama", "sim-silent")
EXPECTED = {"sim-openai": "caches", "sim-llama": "no_caching", "sim-silent": "unknown"}


def results(proxy: Any, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api(proxy, "results", limit=1000, **params)["results"]
    return rows


def test_a_scheduled_cycle_records_results_and_verdicts(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    proxy = start_monitor(probe_models=MODELS, probe_tests=("basic", "stream"))
    first = cycle_done(proxy)
    assert (first["trigger"], first["status"], first["reason"]) == ("scheduled", "completed", None)
    assert first["planned"] == sorted(MODELS)  # none probed yet: by name
    assert first["probed"] == sorted(MODELS)
    done = truth(psim)
    rows = results(proxy)
    assert len(rows) == len(done) == first["requests"]
    for row in rows:  # each stored request is what the simulator did
        seen = done[int(row["upstream_request_id"].removeprefix("sim-")) - 1]
        assert (row["model"], row["prompt_tokens"], row["host"]) == (seen["model"], seen["prompt_tokens"],
                                                                     f"sim-server-{seen['server']}")
        expected_cached = None if PROFILES[row["model"]].usage_shape == "none" else seen["cached_tokens"]
        assert row["cached_tokens"] == expected_cached
        assert row["cycle_id"] == first["id"] and row["source"] == "cycle"
    assert first["tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    models = {m["model"]: m for m in api(proxy, "models")["models"]}
    assert {name: m["verdict"] for name, m in models.items()} == EXPECTED
    # the next cycle is due one interval after this one started, not before
    state = scheduler(proxy)
    assert state["next_run"] == first["started_at"] + 600.0
    advance(psim, state["next_run"] - httpx.get(psim.url + "/_clock").json()["now"])
    second = cycle_done(proxy, after=first["id"])
    assert (second["trigger"], second["status"]) == ("scheduled", "completed")
    # most out of date first: the order the first cycle's verdicts were written in
    assert second["planned"] == [m for m, _ in sorted(((m, models[m]["last_run"]) for m in MODELS),
                                                     key=lambda item: item[1])]
    for model, verdict in EXPECTED.items():
        history = api(proxy, f"model/{model}/history")["verdicts"]
        assert [v["verdict"] for v in history] == [verdict, verdict]
        assert [v["cycle_id"] for v in history] == [second["id"], first["id"]]
    assert len(results(proxy)) == len(truth(psim))


def test_the_ttl_search_is_stepped_across_cycles(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    true_ttl = PROFILES["sim-kimi"].ttl  # 150 s
    proxy = start_monitor(probe_models=("sim-kimi",), probe_tests=("basic", "ttl"))
    cycle_done(proxy)

    def kimi() -> dict[str, Any]:
        [model] = api(proxy, "models")["models"]
        return model  # type: ignore[no-any-return]

    steps = 0
    while (model := kimi())["ttl_status"] == "measuring":
        due = model["ttl_due"]
        assert due is not None, model
        now = httpx.get(psim.url + "/_clock").json()["now"]
        advance(psim, max(0.0, due - now))
        wait_for(lambda due=due: (m := kimi())["ttl_due"] != due and not scheduler(proxy)["ttl"]["busy"] and m,
                 "the due TTL step to be taken")
        steps += 1
        assert steps < 20
    lower, upper = model["ttl_seconds"]
    assert lower < true_ttl <= upper
    assert upper / lower <= 1.25 or upper - lower <= 1.0
    cycles = api(proxy, "model/sim-kimi/history")["verdicts"]
    assert len(cycles) > 1  # the long gaps passed while cycles went on
    ttl_rows = results(proxy, source="ttl")
    assert {r["test"] for r in ttl_rows} == {"ttl"} and len(ttl_rows) >= 2 * steps
    # every TTL request of the search is the simulator's truth: a hit exactly when the gap was shorter than the TTL
    done = truth(psim, "sim-kimi")
    by_seq = {f"sim-{t['seq']}": t for t in done}
    for row in ttl_rows:
        assert row["cached_tokens"] == by_seq[row["upstream_request_id"]]["cached_tokens"]


def test_retention_deletes_old_rows_at_start(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    old = start_monitor(probe_retention_days=30)
    first = cycle_done(old)
    assert len(results(old)) == 4
    old.stop()
    advance(psim, 31 * 86400)
    again = start_monitor(probe_retention_days=30)
    cycle = cycle_done(again, after=first["id"])
    rows = results(again)
    assert rows and all(r["cycle_id"] == cycle["id"] for r in rows)  # the first cycle's requests are gone
    assert [v["cycle_id"] for v in api(again, "model/sim-openai/history")["verdicts"]] == [cycle["id"]]


def test_a_cycle_over_the_token_budget_is_skipped_and_says_so(start_monitor: StartMonitor,
                                                               psim: SimulatorServer) -> None:
    proxy = start_monitor(probe_daily_token_budget=10)
    cycle = cycle_done(proxy)
    assert cycle["status"] == "skipped"
    assert cycle["reason"] == ("the cycle would spend about 8,500 tokens, but only 10 of today's "
                               "PROBE_DAILY_TOKEN_BUDGET (10) are left")
    assert truth(psim) == []  # nothing was sent
    assert scheduler(proxy)["budget"]["tokens"] == {"daily": 10, "spent_today": 0, "left": 10, "estimated_today": 0}


def test_the_budget_counts_what_was_spent_today(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    first = start_monitor()
    cycle = cycle_done(first)
    spent = cycle["tokens"]
    first.stop()
    sent = len(truth(psim))
    budget = spent + spent // 2  # room for half a cycle more
    proxy = start_monitor(probe_daily_token_budget=budget)
    wait_for(lambda: scheduler(proxy)["leader"], "the restarted replica to lead")
    assert scheduler(proxy)["next_run"] == cycle["started_at"] + 600.0  # a restart keeps the schedule
    advance(psim, 600.0)
    skipped = cycle_done(proxy, after=cycle["id"])
    assert skipped["status"] == "skipped"
    assert skipped["reason"] == (f"the cycle would spend about {spent:,} tokens, but only {budget - spent:,} of "
                                 f"today's PROBE_DAILY_TOKEN_BUDGET ({budget:,}) are left")
    assert len(truth(psim)) == sent
    assert scheduler(proxy)["budget"]["tokens"] == {"daily": budget, "spent_today": spent, "left": budget - spent,
                                                    "estimated_today": 0}


def test_answers_without_usage_spend_the_budget_too(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    # a model whose answers never carry usage: its requests are charged estimates, never 0, so the next cycle,
    # which would take the day past the budget, is skipped (counted as 0, it ran and the budget was overrun)
    proxy = start_monitor(probe_models=("sim-usageless",), probe_daily_token_budget=12_000)
    cycle = cycle_done(proxy)
    assert cycle["status"] == "completed"
    done = truth(psim)
    spent = cycle["tokens"]
    assert spent == cycle["estimated_tokens"] >= sum(t["prompt_tokens"] + 1 for t in done) > 0
    rows = results(proxy)
    assert len(rows) == len(done) and all(r["prompt_tokens"] is None and r["estimated_tokens"] > 0 for r in rows)
    assert sum(r["estimated_tokens"] for r in rows) == spent
    assert scheduler(proxy)["budget"]["tokens"] == {"daily": 12_000, "spent_today": spent, "left": 12_000 - spent,
                                                    "estimated_today": spent}
    assert api(proxy, "models")["models"][0]["tokens_estimated"] == spent
    lines = set(httpx.get(proxy.url + "/metrics/prometheus").text.splitlines())
    assert f'cachegate_probe_tokens_total{{kind="estimated",model="sim-usageless"}} {float(spent)}' in lines
    advance(psim, 600.0)
    skipped = cycle_done(proxy, after=cycle["id"])
    assert skipped["status"] == "skipped"
    assert skipped["reason"] == (f"the cycle would spend about {spent:,} tokens, but only {12_000 - spent:,} of "
                                 "today's PROBE_DAILY_TOKEN_BUDGET (12,000) are left")
    assert len(truth(psim)) == len(done)


def test_the_balance_floor_stops_a_cycle(start_monitor: StartMonitor, psim: SimulatorServer) -> None:
    # the simulator starts at 1000 DIEM and charges every answer: after the first model it is below the floor
    proxy = start_monitor(probe_models=("sim-llama", "sim-openai"), probe_balance_floor=(999.999, "diem"))
    cycle = cycle_done(proxy)
    diem = scheduler(proxy)["balance"]["diem"]
    assert diem < 999.999
    assert (cycle["status"], cycle["planned"], cycle["probed"]) == ("stopped", ["sim-llama", "sim-openai"],
                                                                    ["sim-llama"])
    assert cycle["reason"] == f"the DIEM balance {diem:,.4f}".rstrip("0") + " is below PROBE_BALANCE_FLOOR " \
        "(999.999 DIEM)"
    assert {t["model"] for t in truth(psim)} == {"sim-llama"}
    # and the next cycle does not start at all
    response = httpx.post(proxy.url + "/probe/api/run", headers=admin_headers(proxy))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["started"], body["cycle"]["status"]) == (False, "skipped")
    assert body["cycle"]["reason"] == cycle["reason"]
    assert {t["model"] for t in truth(psim)} == {"sim-llama"}
