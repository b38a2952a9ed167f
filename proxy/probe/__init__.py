"""The prompt-cache probe: measure whether, from what size, in what steps and for how long an upstream
model caches prompts, with evidence for every figure.

Public surface::

    report = await run_probe("zai-org-glm-4.6", TESTS, upstream, api_key=key, venice=True)
    report.verdict.verdict, report.as_dict()

``upstream`` is any :class:`proxy.contracts.Upstream` (``proxy.upstream.HttpUpstream`` for a real one);
time goes through a :class:`Clock`, so tests drive a fake one. No web framework is imported here.
"""

from __future__ import annotations

from .catalog import Advertised, advertised, is_text_model, list_models
from .clock import Clock, SystemClock
from .exchange import CheckResult, Exchange, ProbeClient
from .prompts import TokenGauge, new_nonce
from .report import ProbeReport, render_table
from .request import HINTS, ROUTING_HINTS, build_request
from .runner import QUICK_TESTS, TESTS, run_probe
from .session import ModelSession, ProbeConfig, Recipe
from .sizes import SizeSearch
from .ttl import PendingGap, TtlSearch, finish_step, prime_step
from .verdict import Verdict, decide

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
