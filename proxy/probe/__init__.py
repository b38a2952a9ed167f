"""The prompt-cache probe: measure whether, from what size, in what steps and for how long an upstream
model caches prompts, with evidence for every figure.

Public surface::

    report = await run_probe("zai-org-glm-4.6", TESTS, upstream, api_key=key, venice=True)
    report.verdict.verdict, report.as_dict()

``upstream`` is any :class:`proxy.contracts.Upstream` (``proxy.upstream.HttpUpstream`` for a real one);
time goes through a :class:`Clock`, so tests drive a fake one. No web framework is imported here.
"""

from __future__ import annotations

from proxy.probe.catalog import Advertised, advertised, is_text_model, list_models
from proxy.probe.clock import Clock, SystemClock
from proxy.probe.exchange import CheckResult, Exchange, ProbeClient
from proxy.probe.prompts import TokenGauge, new_nonce
from proxy.probe.report import ProbeReport, render_table
from proxy.probe.request import HINTS, ROUTING_HINTS, build_request
from proxy.probe.runner import QUICK_TESTS, TESTS, run_probe
from proxy.probe.session import ModelSession, ProbeConfig, Recipe
from proxy.probe.sizes import SizeSearch
from proxy.probe.ttl import PendingGap, TtlSearch, finish_step, prime_step
from proxy.probe.verdict import Verdict, decide

__all__ = [
    "HINTS",
    "QUICK_TESTS",
    "ROUTING_HINTS",
    "TESTS",
    "Advertised",
    "CheckResult",
    "Clock",
    "Exchange",
    "ModelSession",
    "PendingGap",
    "ProbeClient",
    "ProbeConfig",
    "ProbeReport",
    "Recipe",
    "SizeSearch",
    "SystemClock",
    "TokenGauge",
    "TtlSearch",
    "Verdict",
    "advertised",
    "build_request",
    "decide",
    "finish_step",
    "is_text_model",
    "list_models",
    "new_nonce",
    "prime_step",
    "render_table",
    "run_probe",
]
